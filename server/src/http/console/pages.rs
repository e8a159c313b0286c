//! The console's pages: maud templates, so every interpolated value is HTML-escaped.
//! The forms on them post to the operations in `actions.rs`.

use super::actions::message;
use super::{Ctx, Lang, Text};
use crate::http::AppState;
use crate::service::admin::{Input, decode};
use crate::service::{ServiceError, iso8601};
use maud::{DOCTYPE, Markup, html};
use std::collections::HashMap;
use thindesk_shared::admin::AuditEntry;
use thindesk_shared::{DesktopStatus, RegistrationMode, TerminalState};
use warp::http::StatusCode;

/// The console's sections: each page names its own with its title's text.
const NAV: [(Text, &str); 8] = [
    (Text::Overview, "/admin/"),
    (Text::Terminals, "/admin/terminals"),
    (Text::Users, "/admin/users"),
    (Text::Places, "/admin/places"),
    (Text::Desktops, "/admin/desktops"),
    (Text::Catalogue, "/admin/catalogue"),
    (Text::Settings, "/admin/settings"),
    (Text::Audit, "/admin/audit"),
];

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · thindesk" }
            link rel="stylesheet" href="/admin/style.css";
            meta name="referrer" content="no-referrer";
            meta name="color-scheme" content="light";
            meta name="language" content=(lang.html());
        }
    }
}

fn layout(ctx: &Ctx, nav: Text, body: Markup) -> String {
    let lang = ctx.lang;
    let title = lang.t(nav);
    let other = if lang == Lang::Zh { "en" } else { "zh" };
    html! {
        (DOCTYPE)
        html lang=(lang.html()) {
            (head(lang, title))
            body {
                header.topbar {
                    a.brand href="/admin/" { span.logo { "td" } "thindesk " span.muted { (lang.t(Text::Console)) } }
                    div.session {
                        a.lang href={ "?lang=" (other) } { (lang.t(Text::Language)) }
                        span.who { (lang.t(Text::SignedInAs)) " " strong { (ctx.admin.name) } }
                        form method="post" action="/admin/logout" {
                            (csrf(ctx))
                            button.link type="submit" { (lang.t(Text::Logout)) }
                        }
                    }
                }
                div.frame {
                    nav.side {
                        @for (item, href) in NAV {
                            a href=(href) class=@if item == nav { "active" } @else { "" } { (lang.t(item)) }
                        }
                    }
                    main {
                        h1 { (title) }
                        @for flash in &ctx.flashes {
                            div class=@if flash.ok { "flash ok" } @else { "flash error" } role="status" {
                                (flash.text)
                                @if !flash.lines.is_empty() {
                                    ul { @for line in &flash.lines { li { (line) } } }
                                }
                            }
                        }
                        (body)
                    }
                }
            }
        }
    }
    .into_string()
}

fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// A one-button form posting `fields` to `action`.
fn button(ctx: &Ctx, action: &str, fields: &[(&str, &str)], label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(ctx))
            @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
            button type="submit" class=(class) { (label) }
        }
    }
}

pub fn login(lang: Lang, token: &str, user: &str, error: Option<&str>) -> String {
    let other = if lang == Lang::Zh { "en" } else { "zh" };
    html! {
        (DOCTYPE)
        html lang=(lang.html()) {
            (head(lang, lang.t(Text::LoginTitle)))
            body.login {
                div.card.login-card {
                    div.brand { span.logo { "td" } "thindesk" }
                    h1 { (lang.t(Text::LoginTitle)) }
                    p.muted { (lang.t(Text::LoginHint)) }
                    @if let Some(error) = error { div.flash.error role="alert" { (error) } }
                    form method="post" action="/admin/login" {
                        input type="hidden" name="login_token" value=(token);
                        label { (lang.t(Text::UserName)) input type="text" name="user" value=(user) autocomplete="username" required autofocus; }
                        label { (lang.t(Text::Password)) input type="password" name="password" autocomplete="current-password" required; }
                        button.primary type="submit" { (lang.t(Text::Login)) }
                    }
                    a.lang href={ "/admin/login?lang=" (other) } { (lang.t(Text::Language)) }
                }
            }
        }
    }
    .into_string()
}

/// Renders the page a GET names.
pub fn page(state: &AppState, ctx: &Ctx, segments: &[String], query: &HashMap<String, String>) -> (StatusCode, String) {
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match path.as_slice() {
        [] | ["overview"] => overview(state, ctx).map(|b| layout(ctx, Text::Overview, b)),
        ["terminals"] => terminals(state, ctx, query).map(|b| layout(ctx, Text::Terminals, b)),
        ["users"] => users(state, ctx).map(|b| layout(ctx, Text::Users, b)),
        ["places"] => places(state, ctx).map(|b| layout(ctx, Text::Places, b)),
        ["desktops"] => desktops(state, ctx).map(|b| layout(ctx, Text::Desktops, b)),
        ["catalogue"] => catalogue(state, ctx).map(|b| layout(ctx, Text::Catalogue, b)),
        ["settings"] => settings(state, ctx).map(|b| layout(ctx, Text::Settings, b)),
        ["audit"] => audit(state, ctx, query).map(|b| layout(ctx, Text::Audit, b)),
        _ => {
            let body = html! { p { (ctx.lang.t(Text::NotFoundPage)) } };
            return (StatusCode::NOT_FOUND, layout(ctx, Text::Overview, body));
        }
    };
    match result {
        Ok(html) => (StatusCode::OK, html),
        Err(error) => {
            let body = html! { div.flash.error { (message(ctx.lang, &error).text) } };
            (StatusCode::INTERNAL_SERVER_ERROR, layout(ctx, Text::Overview, body))
        }
    }
}

type Page = Result<Markup, ServiceError>;

fn state_badge(lang: Lang, state: TerminalState) -> Markup {
    let (class, key) = match state {
        TerminalState::Approved => ("badge green", Text::Approved),
        TerminalState::Waiting => ("badge amber", Text::Waiting),
        TerminalState::Rejected => ("badge red", Text::Rejected),
    };
    html! { span class=(class) { (lang.t(key)) } }
}

fn status_badge(status: DesktopStatus) -> Markup {
    let class = match status {
        DesktopStatus::Active => "badge green",
        DesktopStatus::Shutoff => "badge grey",
        DesktopStatus::Error => "badge red",
        _ => "badge amber",
    };
    html! { span class=(class) { (status.as_str()) } }
}

fn overview(state: &AppState, ctx: &Ctx) -> Page {
    let lang = ctx.lang;
    let users = state.services.accounts.users()?;
    let admins = users.iter().filter(|u| u.is_admin).count();
    let terminals = state.services.terminals.terminals(None)?;
    let waiting: Vec<_> = terminals.iter().filter(|t| t.state == TerminalState::Waiting).cloned().collect();
    let desktops = state.services.desktops.list_all(None)?;
    let running = desktops.iter().filter(|d| d.status == DesktopStatus::Active).count();
    let instances = state.services.cloud.list_instances()?;
    let running_instances = instances.iter().filter(|i| i.status == DesktopStatus::Active).count();
    let recent =
        state.services.admin().audit_entries(&crate::service::AuditFilter { limit: Some(8), ..Default::default() })?;
    // Read afresh: a certificate imported with `tls import` shows at once.
    let fingerprint = match crate::tls::show(&state.tls_dir) {
        Ok(identity) => Some(identity.fingerprint),
        Err(error) => {
            tracing::warn!(%error, "cannot read the server certificate");
            None
        }
    };
    let stat = |value: String, key: Text, href: &'static str| {
        html! { a.stat href=(href) { span.value { (value) } span.label { (lang.t(key)) } } }
    };
    Ok(html! {
        div.stats {
            (stat((users.len() - admins).to_string(), Text::Students, "/admin/users"))
            (stat(admins.to_string(), Text::Administrators, "/admin/users"))
            (stat(terminals.len().to_string(), Text::Terminals, "/admin/terminals"))
            (stat(waiting.len().to_string(), Text::PendingTerminals, "/admin/terminals?state=waiting"))
            (stat(desktops.len().to_string(), Text::Desktops, "/admin/desktops"))
            (stat(format!("{}", running + running_instances), Text::RunningVms, "/admin/desktops"))
        }
        section.card {
            h2 { (lang.t(Text::PendingTerminals)) }
            (terminal_table(ctx, &waiting))
        }
        section.card {
            h2 { (lang.t(Text::RecentActivity)) }
            (audit_table(lang, &recent))
        }
        @if let Some(fingerprint) = &fingerprint {
            section.card {
                h2 { (lang.t(Text::ServerCertificate)) }
                p.muted { (lang.t(Text::ServerCertificateHint)) }
                code.fingerprint { (fingerprint) }
            }
        }
    })
}

fn terminal_table(ctx: &Ctx, terminals: &[thindesk_shared::Terminal]) -> Markup {
    let lang = ctx.lang;
    if terminals.is_empty() {
        return html! { p.empty { (lang.t(Text::NothingWaiting)) } };
    }
    html! {
        table {
            thead { tr {
                th { (lang.t(Text::MacAddress)) } th { (lang.t(Text::Place)) } th { (lang.t(Text::Seat)) }
                th { (lang.t(Text::State)) } th { (lang.t(Text::RegisteredBy)) } th { (lang.t(Text::Actions)) }
            } }
            tbody {
                @for t in terminals {
                    tr data-mac=(t.mac_address) {
                        td.mono { (t.mac_address) } td { (t.place) } td { (t.seat_number) }
                        td { (state_badge(lang, t.state)) } td { (t.register_mode) }
                        td.actions {
                            @if t.state != TerminalState::Approved {
                                (button(ctx, "/admin/terminals/approve", &[("mac", &t.mac_address)], lang.t(Text::Approve), "primary small"))
                            }
                            @if t.state != TerminalState::Rejected {
                                (button(ctx, "/admin/terminals/reject", &[("mac", &t.mac_address)], lang.t(Text::Reject), "small"))
                            }
                            (button(ctx, "/admin/terminals/delete", &[("mac", &t.mac_address)], lang.t(Text::Delete), "danger small"))
                        }
                    }
                }
            }
        }
    }
}

fn terminals(state: &AppState, ctx: &Ctx, query: &HashMap<String, String>) -> Page {
    let lang = ctx.lang;
    let filter = query.get("state").and_then(|s| TerminalState::parse(&s.to_ascii_uppercase()));
    let terminals = state.services.terminals.terminals(filter)?;
    let places = state.services.terminals.places()?;
    let tabs = [
        (None, Text::All),
        (Some(TerminalState::Waiting), Text::Waiting),
        (Some(TerminalState::Approved), Text::Approved),
        (Some(TerminalState::Rejected), Text::Rejected),
    ];
    Ok(html! {
        div.tabs {
            @for (state, key) in tabs {
                a class=@if state == filter { "tab active" } @else { "tab" }
                  href={ "/admin/terminals" @if let Some(s) = state { "?state=" (s.as_str().to_ascii_lowercase()) } } { (lang.t(key)) }
            }
        }
        section.card {
            @if terminals.is_empty() { p.empty { (lang.t(Text::NoneYet)) } } @else { (terminal_table(ctx, &terminals)) }
        }
        @if !terminals.is_empty() && !places.is_empty() {
            section.card {
                h2 { (lang.t(Text::Move)) }
                form.row method="post" action="/admin/terminals/move" {
                    (csrf(ctx))
                    label { (lang.t(Text::MacAddress)) select name="mac" { @for t in &terminals { option value=(t.mac_address) { (t.mac_address) " (" (t.place) " / " (t.seat_number) ")" } } } }
                    label { (lang.t(Text::Place)) select name="place" { @for p in &places { option value=(p.name) { (p.name) } } } }
                    label { (lang.t(Text::Seat)) input type="text" name="seat_number" required size="6"; }
                    button type="submit" { (lang.t(Text::Move)) }
                }
            }
        }
    })
}

fn users(state: &AppState, ctx: &Ctx) -> Page {
    let lang = ctx.lang;
    let users = state.services.accounts.users()?;
    Ok(html! {
        div.grid2 {
            section.card {
                h2 { (lang.t(Text::NewUser)) }
                form.stack method="post" action="/admin/users/create" {
                    (csrf(ctx))
                    label { (lang.t(Text::UserName)) input type="text" name="name" required; }
                    label { (lang.t(Text::Password)) input type="password" name="password" required minlength="8" autocomplete="new-password"; }
                    label.check { input type="checkbox" name="admin" value="true"; (lang.t(Text::IsAdmin)) }
                    button.primary type="submit" { (lang.t(Text::Create)) }
                }
            }
            section.card {
                h2 { (lang.t(Text::ImportCsv)) }
                p.muted { (lang.t(Text::CsvHelp)) }
                form.stack method="post" action="/admin/users/import" enctype="multipart/form-data" {
                    (csrf(ctx))
                    label { (lang.t(Text::CsvFile)) input type="file" name="file" accept=".csv,text/csv,text/plain"; }
                    label { (lang.t(Text::OrPaste)) textarea name="csv" rows="4" placeholder="name,password,admin\nalice,alice-password\nbob,bob-password" {} }
                    button.primary type="submit" { (lang.t(Text::Import)) }
                }
            }
        }
        section.card {
            table {
                thead { tr { th { (lang.t(Text::Name)) } th { (lang.t(Text::Role)) } th { (lang.t(Text::Created)) } th { (lang.t(Text::ResetPassword)) } th { (lang.t(Text::Actions)) } } }
                tbody {
                    @for u in &users {
                        tr data-user=(u.name) {
                            td { strong { (u.name) } }
                            td { @if u.is_admin { span.badge.blue { (lang.t(Text::Administrator)) } } @else { (lang.t(Text::Student)) } }
                            td.muted.time { (iso8601(u.created_at)) }
                            td {
                                form.inline method="post" action="/admin/users/password" {
                                    (csrf(ctx))
                                    input type="hidden" name="name" value=(u.name);
                                    input type="password" name="password" placeholder=(lang.t(Text::NewPassword)) required minlength="8" autocomplete="new-password" size="14";
                                    button.small type="submit" { (lang.t(Text::ResetPassword)) }
                                }
                            }
                            td.actions {
                                @if u.name != ctx.admin.name {
                                    (button(ctx, "/admin/users/delete", &[("name", &u.name)], lang.t(Text::Delete), "danger small"))
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn places(state: &AppState, ctx: &Ctx) -> Page {
    let lang = ctx.lang;
    let places = state.services.terminals.places()?;
    let terminals = state.services.terminals.terminals(None)?;
    Ok(html! {
        section.card {
            h2 { (lang.t(Text::NewPlace)) }
            form.row method="post" action="/admin/places/create" {
                (csrf(ctx))
                label { (lang.t(Text::Name)) input type="text" name="name" required; }
                label.grow { (lang.t(Text::Address)) input type="text" name="address"; }
                button.primary type="submit" { (lang.t(Text::Create)) }
            }
        }
        section.card {
            @if places.is_empty() { p.empty { (lang.t(Text::NoneYet)) } } @else {
                table {
                    thead { tr { th { (lang.t(Text::Name)) } th { (lang.t(Text::Address)) } th { (lang.t(Text::Terminals)) } th { (lang.t(Text::Actions)) } } }
                    tbody {
                        @for p in &places {
                            tr {
                                td { strong { (p.name) } } td { (p.address) }
                                td { (terminals.iter().filter(|t| t.place == p.name).count()) }
                                td.actions { (button(ctx, "/admin/places/delete", &[("name", &p.name)], lang.t(Text::Delete), "danger small")) }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn desktops(state: &AppState, ctx: &Ctx) -> Page {
    let lang = ctx.lang;
    let desktops = state.services.desktops.list_all(None)?;
    let images = state.services.catalogue.images()?;
    let flavors = state.services.catalogue.flavors()?;
    let users = state.services.accounts.users()?;
    let instances = state.services.cloud.list_instances()?;
    // Every machine of this server lives in the same place: a cloud's project, or
    // this host (no column then).
    let location = state.services.desktops.location();
    Ok(html! {
        section.card {
            h2 { (lang.t(Text::GiveClass)) }
            form.stack method="post" action="/admin/desktops/create" {
                (csrf(ctx))
                div.row {
                    label { (lang.t(Text::Image)) select name="image" required { @for i in &images { option value=(i.name) { (i.name) } } } }
                    label { (lang.t(Text::Flavor)) select name="flavor" required {
                        @for f in &flavors { option value=(f.name) selected[f.name == "m1.small"] { (f.name) " (" (f.vcpus) " vCPU, " (f.ram_mib) " MiB)" } }
                    } }
                    label.grow { (lang.t(Text::DesktopName)) input type="text" name="name"; }
                }
                fieldset {
                    legend { (lang.t(Text::Who)) }
                    label.check { input type="radio" name="class" value="all_students" checked; (lang.t(Text::AllStudents)) }
                    label.check { input type="radio" name="class" value="users"; (lang.t(Text::TheseUsers)) }
                    textarea name="users" rows="3" placeholder="alice\nbob" {}
                }
                button.primary type="submit" { (lang.t(Text::GiveDesktops)) }
            }
        }
        section.card {
            @if desktops.is_empty() { p.empty { (lang.t(Text::NoneYet)) } } @else {
                table {
                    thead { tr {
                        th { (lang.t(Text::Name)) } th { (lang.t(Text::Owner)) } th { (lang.t(Text::Status)) } th { (lang.t(Text::Image)) }
                        th { (lang.t(Text::Flavor)) }
                        @if location.is_some() { th { (lang.t(Text::LivesIn)) } }
                        th { (lang.t(Text::Actions)) } th { (lang.t(Text::Assign)) }
                    } }
                    tbody {
                        @for d in &desktops {
                            tr data-owner=(d.owner) {
                                td { strong { (d.name) } br; span.mono.muted { (d.id) } }
                                td { (d.owner) } td { (status_badge(d.status)) }
                                td { (d.image.as_deref().unwrap_or("-")) } td { (d.flavor.as_deref().unwrap_or("-")) }
                                @if let Some(location) = &location { td.muted.location { (location) } }
                                td.actions {
                                    @if d.status != DesktopStatus::Active {
                                        (button(ctx, "/admin/desktops/action", &[("id", &d.id), ("action", "start")], lang.t(Text::Start), "small primary"))
                                    } @else {
                                        (button(ctx, "/admin/desktops/action", &[("id", &d.id), ("action", "reboot")], lang.t(Text::Reboot), "small"))
                                        (button(ctx, "/admin/desktops/action", &[("id", &d.id), ("action", "shutdown")], lang.t(Text::Shutdown), "small"))
                                        (button(ctx, "/admin/desktops/ticket", &[("id", &d.id)], lang.t(Text::NewTicket), "small"))
                                    }
                                    (button(ctx, "/admin/desktops/delete", &[("id", &d.id)], lang.t(Text::Delete), "danger small"))
                                }
                                td {
                                    form.inline method="post" action="/admin/desktops/assign" {
                                        (csrf(ctx))
                                        input type="hidden" name="id" value=(d.id);
                                        select name="user" { @for u in &users { option value=(u.name) selected[u.name == d.owner] { (u.name) } } }
                                        button.small type="submit" { (lang.t(Text::Assign)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (lang.t(Text::ExamMachines)) }
            @if instances.is_empty() { p.empty { (lang.t(Text::NoneYet)) } } @else {
                table {
                    thead { tr { th { (lang.t(Text::Name)) } th { (lang.t(Text::Status)) } th { (lang.t(Text::Image)) } th { (lang.t(Text::Flavor)) } th { (lang.t(Text::Internet)) } th { (lang.t(Text::Created)) } @if location.is_some() { th { (lang.t(Text::LivesIn)) } } th { (lang.t(Text::Actions)) } } }
                    tbody {
                        @for i in &instances {
                            tr {
                                td { strong { (i.name) } br; span.mono.muted { (i.vm_id) } }
                                td { (status_badge(i.status)) } td { (i.image) } td { (i.flavor) }
                                td { (lang.t(if i.internet { Text::Yes } else { Text::No })) } td.muted { (i.created_at) }
                                @if let Some(location) = &location { td.muted.location { (location) } }
                                td.actions { (button(ctx, "/admin/instances/destroy", &[("id", &i.vm_id)], lang.t(Text::Destroy), "danger small")) }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn catalogue(state: &AppState, ctx: &Ctx) -> Page {
    let lang = ctx.lang;
    let images = state.services.catalogue.images()?;
    let flavors = state.services.catalogue.flavors()?;
    // A catalogue that follows a cloud's is changed there, not here.
    let own = !state.services.catalogue.follows_platform();
    Ok(html! {
        @if !own {
            section.card.notice {
                p { (lang.t(Text::CatalogueFollowsPlatform)) }
                @if let Some(location) = state.services.desktops.location() { p.muted.location { (location) } }
            }
        }
        section.card {
            h2 { (lang.t(Text::Images)) }
            @if images.is_empty() { p.empty { (lang.t(Text::NoneYet)) } } @else {
                table {
                    thead { tr { th { (lang.t(Text::Name)) } th { (lang.t(Text::Connection)) } th { (lang.t(Text::OsUsername)) } th { (lang.t(Text::GuestAgent)) } th { (lang.t(if own { Text::BaseDisk } else { Text::LivesIn })) } @if own { th { (lang.t(Text::Actions)) } } } }
                    tbody { @for i in &images { tr data-image=(i.name) {
                        td { strong { (i.name) } } td { (i.default_connection_type.as_str()) } td { (i.os_username) }
                        td { @if i.guest_agent { (lang.t(Text::OwnOsPasswords)) } @else { span.badge.amber { (lang.t(Text::SharedOsPassword)) } } }
                        td.mono { (i.base_disk.display()) }
                        @if own { td.actions { (button(ctx, "/admin/images/delete", &[("name", &i.name)], lang.t(Text::Delete), "danger small")) } }
                    } } }
                }
            }
            @if own { form.row method="post" action="/admin/images/create" {
                (csrf(ctx))
                label { (lang.t(Text::Name)) input type="text" name="name" required size="14"; }
                label.grow { (lang.t(Text::BaseDisk)) input type="text" name="disk" required placeholder="/var/lib/thindesk/images/win10.qcow2"; }
                label { (lang.t(Text::Connection)) select name="connection" { option value="spice" { "SPICE" } option value="rdp" { "RDP" } } }
                label { (lang.t(Text::OsUsername)) input type="text" name="os_username" size="10"; }
                label { (lang.t(Text::OsPassword)) input type="password" name="os_password" size="10" autocomplete="off"; }
                label.check { input type="checkbox" name="guest_agent" value="true"; (lang.t(Text::HasGuestAgent)) }
                button.primary type="submit" { (lang.t(Text::Add)) }
            } }
        }
        section.card {
            h2 { (lang.t(Text::Flavors)) }
            table {
                thead { tr { th { (lang.t(Text::Name)) } th { (lang.t(Text::Vcpus)) } th { (lang.t(Text::RamMib)) } th { (lang.t(Text::DiskGib)) } @if own { th { (lang.t(Text::Actions)) } } } }
                tbody { @for f in &flavors { tr {
                    td { strong { (f.name) } } td { (f.vcpus) } td { (f.ram_mib) } td { (f.disk_gib) }
                    @if own { td.actions { (button(ctx, "/admin/flavors/delete", &[("name", &f.name)], lang.t(Text::Delete), "danger small")) } }
                } } }
            }
            @if own { form.row method="post" action="/admin/flavors/create" {
                (csrf(ctx))
                label { (lang.t(Text::Name)) input type="text" name="name" required size="12"; }
                label { (lang.t(Text::Vcpus)) input type="number" name="vcpus" min="1" max="64" value="1" required; }
                label { (lang.t(Text::RamMib)) input type="number" name="ram" min="64" value="2048" required; }
                label { (lang.t(Text::DiskGib)) input type="number" name="disk" min="1" value="20" required; }
                button.primary type="submit" { (lang.t(Text::Add)) }
            } }
        }
    })
}

fn settings(state: &AppState, ctx: &Ctx) -> Page {
    let lang = ctx.lang;
    let mode = state.services.terminals.registration_mode()?;
    let modes = [
        (RegistrationMode::Auto, Text::ModeAuto),
        (RegistrationMode::Approval, Text::ModeApproval),
        (RegistrationMode::Closed, Text::ModeClosed),
    ];
    Ok(html! {
        section.card {
            form.stack method="post" action="/admin/settings" {
                (csrf(ctx))
                fieldset {
                    legend { (lang.t(Text::RegistrationMode)) }
                    @for (m, key) in modes {
                        label.check { input type="radio" name="terminal_registration_mode" value=(m.as_str()) checked[m == mode]; (lang.t(key)) }
                    }
                }
                button.primary type="submit" { (lang.t(Text::Save)) }
            }
        }
    })
}

fn audit_table(lang: Lang, entries: &[AuditEntry]) -> Markup {
    if entries.is_empty() {
        return html! { p.empty { (lang.t(Text::NoneYet)) } };
    }
    html! {
        table.audit {
            thead { tr { th { (lang.t(Text::Time)) } th { (lang.t(Text::Actor)) } th { (lang.t(Text::From)) } th { (lang.t(Text::Action)) } th { (lang.t(Text::Target)) } th { (lang.t(Text::Detail)) } } }
            tbody { @for e in entries { tr {
                td.mono.muted.time { (e.at) } td { strong { (e.actor) } } td.mono { (e.address) }
                td { span.badge.grey { (e.action) } } td.mono { (e.target) } td { (e.detail) }
            } } }
        }
    }
}

fn audit(state: &AppState, ctx: &Ctx, query: &HashMap<String, String>) -> Page {
    let lang = ctx.lang;
    let value = |key: &str| query.get(key).cloned().unwrap_or_default();
    let (entries, error) = match decode::audit_filter(&Input::from_text(query.clone())) {
        Ok(filter) => (state.services.admin().audit_entries(&filter)?, None),
        Err(error) => (Vec::new(), Some(message(lang, &error))),
    };
    Ok(html! {
        section.card {
            form.row method="get" action="/admin/audit" {
                label { (lang.t(Text::Actor)) input type="text" name="actor" value=(value("actor")) size="12"; }
                label { (lang.t(Text::Action)) input type="text" name="action" value=(value("action")) size="14" placeholder="terminal"; }
                label { (lang.t(Text::Since)) input type="text" name="since" value=(value("since")) size="18" placeholder="2026-11-24"; }
                label { (lang.t(Text::Until)) input type="text" name="until" value=(value("until")) size="18" placeholder="2026-11-24T18:00:00Z"; }
                label { (lang.t(Text::Limit)) input type="number" name="limit" value=(value("limit")) min="1" max="1000" placeholder="100"; }
                button type="submit" { (lang.t(Text::Filter)) }
            }
            @if let Some(error) = error { div.flash.error { (error.text) } }
        }
        section.card { (audit_table(lang, &entries)) }
    })
}

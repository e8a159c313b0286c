//! The administration commands: a thin face over [`crate::service::admin`]. Each
//! subcommand gathers its arguments (and, for passwords, a prompt) into the
//! operation's fields, the operation's one decoder reads them, and [`report`] prints
//! the outcome. Arguments are taken as text and read by the same decoders as the admin
//! API and the console, so a wrong value gets the same message in all three.

use crate::service::admin::{Command, Decoder, Input, Outcome, decode};
use crate::service::{Actor, ServiceError, Services};
use anyhow::bail;
use clap::Subcommand;
use std::io::Write;
use thindesk_shared::admin::Settings;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage places (classrooms)
    #[command(subcommand)]
    Place(PlaceCommand),
    /// Manage terminals
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// Read and change server settings
    #[command(subcommand)]
    Setting(SettingCommand),
    /// Manage the catalogue's images (base disks)
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage the catalogue's flavors (machine sizes)
    #[command(subcommand)]
    Flavor(FlavorCommand),
    /// Manage desktops
    #[command(subcommand)]
    Desktop(DesktopCommand),
    /// Look at the cloud API's instances
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Read the audit log, newest first
    Audit {
        /// Only what this user (or `terminal`, `cloud-api`, `cli:USER`) did
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (`terminal.approve`) or kind of action (`terminal`)
        #[arg(long)]
        action: Option<String>,
        /// From this time on: 2026-11-24, 2026-11-24T08:00:00Z or Unix seconds
        #[arg(long)]
        since: Option<String>,
        /// Up to this time
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries (1 to 1000)
        #[arg(long, default_value = "100")]
        limit: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the terminal (or one line of stdin)
    Add {
        name: String,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
    },
    /// List users
    List,
    /// Set a user's password (read like `add`); their tokens are revoked
    Passwd { name: String },
    /// Grant or withdraw administrator rights
    Admin {
        name: String,
        #[arg(value_name = "true|false")]
        enabled: String,
    },
    /// Delete a user who owns no desktops
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum PlaceCommand {
    /// Add a place
    Add {
        name: String,
        /// Where it is, e.g. "Building B, floor 1"
        #[arg(long, default_value = "")]
        address: String,
    },
    /// List places
    List,
    /// Delete a place with no terminals
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TerminalCommand {
    /// List terminals
    List {
        /// Only terminals in this state: approved, waiting or rejected
        #[arg(long)]
        state: Option<String>,
    },
    /// Approve a terminal
    Approve { mac: String },
    /// Reject a terminal
    Reject { mac: String },
    /// Delete a terminal, so that it may register again
    Delete { mac: String },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Add an image; the guest's OS password is read from the terminal (or one line of
    /// stdin)
    Add {
        name: String,
        /// Absolute path of the base disk (qcow2)
        #[arg(long)]
        disk: String,
        /// How terminals connect to desktops of this image: spice or rdp
        #[arg(long, default_value = "spice")]
        connection: String,
        /// The account desktops of this image log in with
        #[arg(long, default_value = "")]
        os_username: String,
        /// The image runs the QEMU guest agent: each desktop then gets its own OS
        /// password, set in the guest at every start (without it, all desktops of
        /// the image share the password asked for here)
        #[arg(long)]
        guest_agent: bool,
    },
    /// List images
    List,
    /// Delete an image no desktop or instance uses
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum FlavorCommand {
    /// Add a flavor
    Add {
        name: String,
        /// Virtual CPUs (1 to 64)
        #[arg(long)]
        vcpus: String,
        /// Memory in MiB (at least 64)
        #[arg(long)]
        ram: String,
        /// Disk size in GiB (at least 1)
        #[arg(long)]
        disk: String,
    },
    /// List flavors
    List,
    /// Delete a flavor no desktop or instance uses
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DesktopCommand {
    /// Create a desktop for a user from an image and a flavor; its machine is defined
    /// at once, and the user starts it from their terminal
    Create {
        /// The user who owns it
        #[arg(long)]
        user: String,
        #[arg(long)]
        image: String,
        #[arg(long)]
        flavor: String,
        /// Shown to the user [default: the image's name]
        #[arg(long)]
        name: Option<String>,
    },
    /// List desktops
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a desktop and free its machine
    Delete {
        /// Desktop ids are random and may begin with `-`
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Give a desktop a new display ticket, cutting whoever is connected
    NewTicket {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// List the instances launched through the cloud API
    List,
}

#[derive(Debug, Subcommand)]
pub enum SettingCommand {
    /// Show every setting
    List,
    /// Change a setting: terminal_registration_mode = auto | approval | closed
    Set { key: String, value: String },
}

/// Where administration commands get passwords from: a no-echo prompt or stdin in
/// the binary, a script in tests. Never from arguments.
pub type PasswordSource<'a> = dyn FnMut(&str) -> anyhow::Result<String> + 'a;

/// Runs one administration command as the host's user and prints its outcome.
pub fn administer(
    services: &Services,
    command: AdminCommand,
    out: &mut impl Write,
    passwords: &mut PasswordSource<'_>,
) -> anyhow::Result<()> {
    let (decoder, input, secret) = request(command)?;
    let input = match secret {
        Some(PromptedSecret { field, prompt }) => {
            // Nobody should type a password for a command that is refused anyway.
            if let Err(ServiceError::Invalid(mut errors)) = decoder(&input) {
                errors.0.remove(field);
                if !errors.is_empty() {
                    return Err(explain(ServiceError::Invalid(errors)));
                }
            }
            input.with(field, passwords(&prompt)?)
        }
        None => input,
    };
    let command = decoder(&input).map_err(explain)?;
    let outcome = services.admin().run(&Actor::cli(), command.clone()).map_err(explain)?;
    report(out, &command, outcome)
}

/// A secret field that is asked for at the prompt, never taken from arguments.
struct PromptedSecret {
    field: &'static str,
    prompt: String,
}

/// The operation a subcommand names, its fields, and the secret still to ask for.
fn request(command: AdminCommand) -> anyhow::Result<(Decoder, Input, Option<PromptedSecret>)> {
    let none = Input::default;
    let (decoder, input): (Decoder, Input) = match command {
        AdminCommand::User(command) => match command {
            UserCommand::Add { name, admin } => {
                let prompt = format!("Password for {name}: ");
                let input = Input::from_text([("name", name)]).with("admin", admin);
                return Ok((decode::create_user, input, Some(PromptedSecret { field: "password", prompt })));
            }
            UserCommand::List => (decode::list_users, none()),
            UserCommand::Passwd { name } => {
                let prompt = format!("New password for {name}: ");
                let secret = PromptedSecret { field: "password", prompt };
                return Ok((decode::reset_password, Input::from_text([("name", name)]), Some(secret)));
            }
            UserCommand::Admin { name, enabled } => {
                (decode::set_admin, Input::from_text([("name", name), ("admin", enabled)]))
            }
            UserCommand::Delete { name } => (decode::delete_user, Input::from_text([("name", name)])),
        },
        AdminCommand::Place(command) => match command {
            PlaceCommand::Add { name, address } => {
                (decode::add_place, Input::from_text([("name", name), ("address", address)]))
            }
            PlaceCommand::List => (decode::list_places, none()),
            PlaceCommand::Delete { name } => (decode::delete_place, Input::from_text([("name", name)])),
        },
        AdminCommand::Terminal(command) => match command {
            TerminalCommand::List { state } => (decode::list_terminals, none().with_some("state", state)),
            TerminalCommand::Approve { mac } => (decode::approve_terminal, Input::from_text([("mac", mac)])),
            TerminalCommand::Reject { mac } => (decode::reject_terminal, Input::from_text([("mac", mac)])),
            TerminalCommand::Delete { mac } => (decode::delete_terminal, Input::from_text([("mac", mac)])),
        },
        AdminCommand::Setting(command) => match command {
            SettingCommand::List => (decode::show_settings, none()),
            SettingCommand::Set { key, value } => {
                if key != Settings::TERMINAL_REGISTRATION_MODE {
                    bail!("unknown setting {key:?}; settings: {}", Settings::TERMINAL_REGISTRATION_MODE);
                }
                (decode::change_settings, Input::from_text([(key, value)]))
            }
        },
        AdminCommand::Image(command) => match command {
            ImageCommand::Add { name, disk, connection, os_username, guest_agent } => {
                let prompt = format!("OS password of {os_username:?} on image {name}: ");
                let fields = [
                    ("name", name),
                    ("disk", disk),
                    ("connection", connection),
                    ("os_username", os_username),
                    ("guest_agent", guest_agent.to_string()),
                ];
                let secret = PromptedSecret { field: "os_password", prompt };
                return Ok((decode::add_image, Input::from_text(fields), Some(secret)));
            }
            ImageCommand::List => (decode::list_images, none()),
            ImageCommand::Delete { name } => (decode::delete_image, Input::from_text([("name", name)])),
        },
        AdminCommand::Flavor(command) => match command {
            FlavorCommand::Add { name, vcpus, ram, disk } => {
                (decode::add_flavor, Input::from_text([("name", name), ("vcpus", vcpus), ("ram", ram), ("disk", disk)]))
            }
            FlavorCommand::List => (decode::list_flavors, none()),
            FlavorCommand::Delete { name } => (decode::delete_flavor, Input::from_text([("name", name)])),
        },
        AdminCommand::Desktop(command) => match command {
            DesktopCommand::Create { user, image, flavor, name } => {
                let input = Input::from_text([("user", user), ("image", image), ("flavor", flavor)]);
                (decode::give_desktops, input.with_some("name", name))
            }
            DesktopCommand::List { user } => (decode::list_desktops, none().with_some("user", user)),
            DesktopCommand::Delete { id } => (decode::delete_desktop, Input::from_text([("id", id)])),
            DesktopCommand::NewTicket { id } => (decode::new_ticket, Input::from_text([("id", id)])),
        },
        AdminCommand::Instance(InstanceCommand::List) => (decode::list_instances, none()),
        AdminCommand::Audit { actor, action, since, until, limit } => {
            let input = none()
                .with_some("actor", actor)
                .with_some("action", action)
                .with_some("since", since)
                .with_some("until", until)
                .with("limit", limit);
            (decode::list_audit, input)
        }
    };
    Ok((decoder, input, None))
}

/// Prints what a command did: a line for a change, a table for a listing.
fn report(out: &mut impl Write, command: &Command, outcome: Outcome) -> anyhow::Result<()> {
    use Command as C;
    match (command, outcome) {
        (C::CreateUser { name, is_admin, .. }, _) => {
            writeln!(out, "created {}{name}", if *is_admin { "administrator " } else { "user " })?
        }
        (C::ResetPassword { name, .. }, _) => writeln!(out, "password of {name} changed; their tokens are revoked")?,
        (C::SetAdmin { name, is_admin }, _) => {
            writeln!(out, "{name} is {}an administrator", if *is_admin { "" } else { "no longer " })?
        }
        (C::DeleteUser { name }, _) => writeln!(out, "deleted {name}")?,
        (C::AddPlace { name, .. }, _) => writeln!(out, "added place {name}")?,
        (C::DeletePlace { name }, _) => writeln!(out, "deleted place {name}")?,
        (C::SetTerminalState { mac, state }, _) => writeln!(out, "{} {mac}", state.as_str().to_ascii_lowercase())?,
        (C::DeleteTerminal { mac }, _) => writeln!(out, "deleted {mac}")?,
        (C::AddImage(spec), _) => writeln!(out, "added image {}", spec.name.trim())?,
        (C::DeleteImage { name }, _) => writeln!(out, "deleted image {name}")?,
        (C::AddFlavor(flavor), _) => writeln!(out, "added flavor {}", flavor.name.trim())?,
        (C::DeleteFlavor { name }, _) => writeln!(out, "deleted flavor {name}")?,
        (C::DeleteDesktop { id }, _) => writeln!(out, "deleted desktop {id}")?,
        (C::NewTicket { id }, _) => writeln!(out, "desktop {id} has a new ticket; its display sessions are cut")?,
        (_, Outcome::DesktopCreated(created)) => writeln!(out, "created desktop {} for {}", created.id, created.owner)?,
        (_, Outcome::Settings(settings)) => {
            writeln!(out, "{} = {}", Settings::TERMINAL_REGISTRATION_MODE, settings.terminal_registration_mode)?
        }
        (_, Outcome::Users(users)) => {
            writeln!(out, "{:<32} {:<6} created", "name", "admin")?;
            for user in users.user_list {
                writeln!(out, "{:<32} {:<6} {}", user.name, if user.is_admin { "yes" } else { "no" }, user.created_at)?;
            }
        }
        (_, Outcome::Places(places)) => {
            writeln!(out, "{:<24} address", "name")?;
            for place in places.place_list {
                writeln!(out, "{:<24} {}", place.name, place.address)?;
            }
        }
        (_, Outcome::Terminals(terminals)) => {
            writeln!(out, "{:<18} {:<16} {:<8} {:<9} registered by", "mac_address", "place", "seat", "state")?;
            for t in terminals.terminal_list {
                let (mac, place, seat, state) = (t.mac_address, t.place, t.seat_number, t.state);
                writeln!(out, "{mac:<18} {place:<16} {seat:<8} {state:<9} {}", t.register_mode)?;
            }
        }
        (_, Outcome::Images(images)) => {
            let header = ["name", "connection", "os user", "os password", "created"];
            writeln!(
                out,
                "{:<32} {:<10} {:<16} {:<12} {:<20} base disk",
                header[0], header[1], header[2], header[3], header[4]
            )?;
            for i in images.image_list {
                let connection = i.default_connection_type.as_str();
                // What the console says: without a guest agent, every desktop of the
                // image has the same OS password.
                let password = if i.guest_agent { "per desktop" } else { "shared" };
                writeln!(
                    out,
                    "{:<32} {connection:<10} {:<16} {password:<12} {:<20} {}",
                    i.name, i.os_username, i.created_at, i.disk
                )?;
            }
        }
        (_, Outcome::Flavors(flavors)) => {
            writeln!(out, "{:<24} {:>5} {:>9} {:>8}", "name", "vcpus", "ram (MiB)", "disk (GiB)")?;
            for f in flavors.flavor_list {
                writeln!(out, "{:<24} {:>5} {:>9} {:>8}", f.name, f.vcpus, f.ram, f.disk)?;
            }
        }
        (_, Outcome::Desktops(desktops)) => {
            writeln!(out, "{:<18} {:<24} {:<16} {:<9} {:<24} flavor", "id", "name", "owner", "status", "image")?;
            for d in desktops.desktop_list {
                let (image, flavor) = (d.image.as_deref().unwrap_or("-"), d.flavor.as_deref().unwrap_or("-"));
                writeln!(out, "{:<18} {:<24} {:<16} {:<9} {image:<24} {flavor}", d.id, d.name, d.owner, d.status)?;
            }
        }
        (_, Outcome::Instances(instances)) => {
            let header = ("vm_id", "name", "image", "flavor", "internet", "status");
            writeln!(
                out,
                "{:<18} {:<24} {:<24} {:<12} {:<8} {:<9} created",
                header.0, header.1, header.2, header.3, header.4, header.5
            )?;
            for i in instances.instance_list {
                let internet = if i.internet { "yes" } else { "no" };
                writeln!(
                    out,
                    "{:<18} {:<24} {:<24} {:<12} {internet:<8} {:<9} {}",
                    i.vm_id, i.name, i.image, i.flavor, i.status, i.created_at
                )?;
            }
        }
        (_, Outcome::Audit(audit)) => {
            writeln!(out, "{:<20} {:<16} {:<15} {:<18} {:<20} detail", "time", "actor", "address", "action", "target")?;
            for e in audit.audit_list {
                writeln!(
                    out,
                    "{:<20} {:<16} {:<15} {:<18} {:<20} {}",
                    e.at, e.actor, e.address, e.action, e.target, e.detail
                )?;
            }
        }
        (_, outcome) => writeln!(out, "{}", serde_json::to_string(&outcome)?)?,
    }
    Ok(())
}

/// Field errors read better on a terminal as one line per field.
fn explain(error: ServiceError) -> anyhow::Error {
    match error {
        ServiceError::Invalid(fields) => {
            let lines: Vec<String> =
                fields.0.iter().map(|(field, messages)| format!("{field}: {}", messages.join("; "))).collect();
            anyhow::anyhow!(lines.join("\n"))
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::compute::double::TestCompute;
    use crate::config::Config;
    use clap::Parser;
    use std::path::PathBuf;
    use std::sync::Arc;

    struct Admin {
        _dir: tempfile::TempDir,
        disk: PathBuf,
        compute: Arc<TestCompute>,
        services: Services,
    }

    impl Admin {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("dir");
            let config = Config { data_dir: dir.path().join("data"), ..Config::default() };
            let compute = Arc::new(TestCompute::new());
            let services = crate::app::open(&config, compute.clone()).expect("services");
            let disk = dir.path().join("xubuntu.qcow2");
            std::fs::write(&disk, b"QFI\xfb").expect("disk");
            Self { _dir: dir, disk, compute, services }
        }

        /// Runs one command line; passwords come from `password`, and the test fails
        /// if a command asks for one when none is given.
        fn run(&self, args: &[&str], password: Option<&str>) -> anyhow::Result<String> {
            let cli = Cli::try_parse_from(std::iter::once("thindesk-server").chain(args.iter().copied()))?;
            let mut out = Vec::new();
            let mut passwords = |_prompt: &str| -> anyhow::Result<String> {
                password.map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no password expected"))
            };
            let crate::cli::Command::Admin(command) = cli.command else { bail!("not an administration command") };
            administer(&self.services, command, &mut out, &mut passwords)?;
            Ok(String::from_utf8(out)?)
        }
    }

    #[test]
    fn a_desktop_created_from_the_command_line_gets_its_machine_and_loses_it_on_delete() {
        let admin = Admin::new();
        admin.run(&["user", "add", "kim"], Some("kims-password")).expect("user");
        let disk = admin.disk.to_str().expect("utf-8");
        admin
            .run(&["image", "add", "xubuntu", "--disk", disk, "--os-username", "student"], Some("os-password"))
            .expect("image");
        let created = admin
            .run(&["desktop", "create", "--user", "kim", "--image", "xubuntu", "--flavor", "m1.small"], None)
            .expect("desktop");
        let id = created.split_whitespace().nth(2).expect("id printed").to_owned();
        let machine = admin.compute.spec(&id).expect("machine defined");
        assert_eq!((machine.vcpus, machine.ram_mib, machine.disk_gib), (1, 2048, 20));
        assert_eq!(machine.base_disk, admin.disk);

        let listed = admin.run(&["desktop", "list", "--user", "kim"], None).expect("list");
        let row = listed.lines().find(|line| line.starts_with(&id)).expect("listed");
        assert!(row.contains("xubuntu") && row.contains("m1.small") && row.contains("kim"), "{row}");
        assert!(!listed.contains("os-password"), "credentials are not listed");
        let principal = crate::service::Principal {
            user_id: 1,
            name: "kim".into(),
            is_admin: false,
            token_hash: None,
            address: None,
        };
        let wire = admin.services.desktops.list_for(&principal).expect("list");
        assert_eq!((wire[0].os_username.as_str(), wire[0].os_password.as_str()), ("student", "os-password"));

        let refused = admin.run(&["image", "delete", "xubuntu"], None).expect_err("in use");
        assert!(refused.to_string().contains("use this image"), "{refused}");
        admin.run(&["desktop", "delete", &id], None).expect("delete");
        assert!(admin.compute.spec(&id).is_none(), "machine destroyed");
        assert_eq!(admin.run(&["desktop", "list"], None).expect("list").lines().count(), 1, "header only");
        admin.run(&["image", "delete", "xubuntu"], None).expect("free now");
    }

    #[test]
    fn command_line_changes_are_audited_as_the_os_user_and_read_back_without_secrets() {
        let admin = Admin::new();
        admin.run(&["user", "add", "kim"], Some("kims-secret-password")).expect("user");
        admin.run(&["place", "add", "b101"], None).expect("place");
        let log = admin.run(&["audit", "--action", "user"], None).expect("audit");
        let row = log.lines().find(|line| line.contains("user.create")).expect("user.create logged");
        assert!(row.contains("cli:") && row.contains("kim"), "{row}");
        assert!(!log.contains("place.create"), "filtered by action: {log}");
        assert!(!log.contains("kims-secret-password"));
        let all = admin.run(&["audit", "--since", "2000-01-01", "--limit", "1"], None).expect("audit");
        assert_eq!(all.lines().count(), 2, "header and the newest entry: {all}");
        assert!(all.contains("place.create"), "{all}");
        assert!(admin.run(&["audit", "--since", "yesterday"], None).is_err());
    }

    #[test]
    fn instances_are_listed_without_their_tickets() {
        let admin = Admin::new();
        let disk = admin.disk.to_str().expect("utf-8");
        admin.run(&["image", "add", "xubuntu", "--disk", disk, "--os-username", "student"], Some("pw")).expect("image");
        let launched = admin.services.cloud.launch_instance("xubuntu", "m1.tiny", false, "exam-42").expect("launch");
        let listed = admin.run(&["instance", "list"], None).expect("list");
        let row = listed.lines().find(|line| line.starts_with(&launched.vm_id)).expect("listed");
        assert!(row.contains("exam-42") && row.contains("m1.tiny") && row.contains("ACTIVE"), "{row}");
        assert!(!listed.contains(&launched.spice_password), "the SPICE ticket is not printed");
    }
}

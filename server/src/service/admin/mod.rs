//! Every administrative operation, defined once. The three faces an administrator
//! uses (the admin API, the management console, the command line) gather an
//! operation's fields into an [`Input`], decode it with the operation's one
//! [`decode`] function into a typed [`Command`], run it here, and present the typed
//! [`Outcome`] in their own way. So the same wrong input gets the same field error in
//! every face, and a rule changes in one place.

pub mod decode;
mod input;

pub use decode::Decoder;
pub use input::Input;

use super::audit::{Actor, AuditFilter};
use super::catalogue::{Flavor, ImageSpec};
use super::desktops::{Class, DesktopSpec};
use super::{ServiceError, Services, iso8601};
use serde::Serialize;
use thindesk_shared::admin::{self as wire, Settings};
use thindesk_shared::{DesktopAction, Place, PlaceList, RegistrationMode, Secret, Terminal, TerminalState};

/// An administrative operation with its input read and checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ListUsers,
    CreateUser { name: String, password: Secret, is_admin: bool },
    ImportUsers { csv: String },
    ResetPassword { name: String, password: Secret },
    SetAdmin { name: String, is_admin: bool },
    DeleteUser { name: String },
    ListPlaces,
    AddPlace { name: String, address: String },
    DeletePlace { name: String },
    ListTerminals { state: Option<TerminalState> },
    SetTerminalState { mac: String, state: TerminalState },
    MoveTerminal { mac: String, place: String, seat_number: String },
    DeleteTerminal { mac: String },
    ShowSettings,
    SetRegistrationMode(RegistrationMode),
    ListImages,
    AddImage(ImageSpec),
    DeleteImage { name: String },
    ListFlavors,
    AddFlavor(Flavor),
    DeleteFlavor { name: String },
    ListDesktops { owner: Option<String> },
    GiveDesktops(GiveDesktops),
    DeleteDesktop { id: String },
    AssignDesktop { id: String, user: String },
    ActOnDesktop { id: String, action: DesktopAction },
    NewTicket { id: String },
    ListInstances,
    DestroyInstance { vm_id: String },
    ListAudit(AuditFilter),
}

/// Desktops from a catalogue image and flavor, for one user or a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveDesktops {
    pub image: String,
    pub flavor: String,
    /// Blank: the image's name.
    pub name: String,
    pub recipients: Recipients,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// One user: a refusal is the whole call's, as for any single creation.
    One(String),
    /// Each user's desktop is made on its own; failures are listed per user.
    Class(Class),
}

/// What an operation answers: the admin API's `data`, which the console and the CLI
/// present in their own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Users(wire::UserList),
    UserCreated(wire::UserCreated),
    UsersImported(wire::UsersImported),
    Places(PlaceList),
    PlaceAdded(Place),
    Terminals(wire::TerminalList),
    Terminal(Terminal),
    Settings(Settings),
    Images(wire::ImageList),
    ImageAdded(wire::ImageAdded),
    Flavors(wire::FlavorList),
    FlavorAdded(wire::Flavor),
    Desktops(wire::DesktopList),
    DesktopCreated(wire::DesktopCreated),
    DesktopsGiven(wire::DesktopsGiven),
    Instances(wire::InstanceList),
    Audit(wire::AuditList),
    /// Done, nothing to show (`data: null`).
    Done,
}

/// Runs administrative commands over the other services. The caller has already
/// established that `by` is an administrator (or the host's command line).
pub struct Admin<'a> {
    pub(super) services: &'a Services,
}

impl Admin<'_> {
    /// Decodes and runs in one step, as every face does.
    pub fn perform(&self, by: &Actor, decoder: Decoder, input: &Input) -> Result<Outcome, ServiceError> {
        self.run(by, decoder(input)?)
    }

    pub fn run(&self, by: &Actor, command: Command) -> Result<Outcome, ServiceError> {
        use Command as C;
        Ok(match command {
            C::ListUsers => Outcome::Users(wire::UserList {
                user_list: self
                    .services
                    .accounts
                    .users()?
                    .into_iter()
                    .map(|u| wire::User { name: u.name, is_admin: u.is_admin, created_at: iso8601(u.created_at) })
                    .collect(),
            }),
            C::CreateUser { name, password, is_admin } => {
                self.services.accounts.create_user(by, &name, password.expose(), is_admin)?;
                Outcome::UserCreated(wire::UserCreated { name, is_admin })
            }
            C::ImportUsers { csv } => {
                Outcome::UsersImported(wire::UsersImported { created: self.services.accounts.import_csv(by, &csv)? })
            }
            C::ResetPassword { name, password } => {
                done(self.services.accounts.reset_password(by, &name, password.expose()))?
            }
            C::SetAdmin { name, is_admin } => done(self.services.accounts.set_admin(by, &name, is_admin))?,
            C::DeleteUser { name } => done(self.services.accounts.delete_user(by, &name))?,
            C::ListPlaces => Outcome::Places(PlaceList { place_list: self.services.terminals.places()? }),
            C::AddPlace { name, address } => {
                self.services.terminals.add_place(by, &name, &address)?;
                Outcome::PlaceAdded(Place { name, address })
            }
            C::DeletePlace { name } => done(self.services.terminals.delete_place(by, &name))?,
            C::ListTerminals { state } => {
                Outcome::Terminals(wire::TerminalList { terminal_list: self.services.terminals.terminals(state)? })
            }
            C::SetTerminalState { mac, state } => {
                self.services.terminals.set_state(by, &mac, state)?;
                Outcome::Terminal(self.services.terminals.lookup(&mac)?)
            }
            C::MoveTerminal { mac, place, seat_number } => {
                self.services.terminals.move_to(by, &mac, &place, &seat_number)?;
                Outcome::Terminal(self.services.terminals.lookup(&mac)?)
            }
            C::DeleteTerminal { mac } => done(self.services.terminals.delete(by, &mac))?,
            C::ShowSettings => self.settings()?,
            C::SetRegistrationMode(mode) => {
                self.services.terminals.set_registration_mode(by, mode)?;
                self.settings()?
            }
            C::ListImages => Outcome::Images(wire::ImageList {
                image_list: self
                    .services
                    .catalogue
                    .images()?
                    .into_iter()
                    .map(|i| wire::Image {
                        name: i.name,
                        disk: i.base_disk.display().to_string(),
                        default_connection_type: i.default_connection_type,
                        os_username: i.os_username,
                        guest_agent: i.guest_agent,
                        created_at: iso8601(i.created_at),
                    })
                    .collect(),
            }),
            C::AddImage(spec) => {
                self.services.catalogue.add_image(by, &spec)?;
                Outcome::ImageAdded(wire::ImageAdded { name: spec.name.trim().to_owned() })
            }
            C::DeleteImage { name } => done(self.services.catalogue.delete_image(by, &name))?,
            C::ListFlavors => Outcome::Flavors(wire::FlavorList {
                flavor_list: self.services.catalogue.flavors()?.into_iter().map(flavor_wire).collect(),
            }),
            C::AddFlavor(flavor) => {
                self.services.catalogue.add_flavor(by, &flavor)?;
                Outcome::FlavorAdded(flavor_wire(Flavor { name: flavor.name.trim().to_owned(), ..flavor }))
            }
            C::DeleteFlavor { name } => done(self.services.catalogue.delete_flavor(by, &name))?,
            C::ListDesktops { owner } => Outcome::Desktops(wire::DesktopList {
                desktop_list: self.services.desktops.list_all(owner.as_deref())?,
            }),
            C::GiveDesktops(give) => self.give_desktops(by, give)?,
            C::DeleteDesktop { id } => done(self.services.desktops.delete(by, &id))?,
            C::AssignDesktop { id, user } => done(self.services.desktops.assign(by, &id, &user))?,
            C::ActOnDesktop { id, action } => done(self.services.desktops.act_as_administrator(by, &id, action))?,
            C::NewTicket { id } => done(self.services.desktops.new_ticket(by, &id))?,
            C::ListInstances => Outcome::Instances(wire::InstanceList {
                instance_list: self
                    .services
                    .cloud
                    .list_instances()?
                    .into_iter()
                    .map(|i| wire::Instance {
                        vm_id: i.vm_id,
                        name: i.name,
                        image: i.image,
                        flavor: i.flavor,
                        internet: i.internet,
                        status: i.status,
                        spice_port: i.spice_port,
                        rdp_port: i.rdp_port,
                        created_at: i.created_at,
                    })
                    .collect(),
            }),
            C::DestroyInstance { vm_id } => done(self.services.cloud.destroy(by, &vm_id))?,
            C::ListAudit(filter) => Outcome::Audit(wire::AuditList { audit_list: self.audit_entries(&filter)? }),
        })
    }

    /// The audit log's entries that `filter` selects, newest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<wire::AuditEntry>, ServiceError> {
        Ok(self
            .services
            .audit
            .list(filter)?
            .into_iter()
            .map(|e| wire::AuditEntry {
                id: e.id,
                at: iso8601(e.at),
                actor: e.actor,
                address: e.address,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect())
    }

    fn settings(&self) -> Result<Outcome, ServiceError> {
        Ok(Outcome::Settings(Settings { terminal_registration_mode: self.services.terminals.registration_mode()? }))
    }

    fn give_desktops(&self, by: &Actor, give: GiveDesktops) -> Result<Outcome, ServiceError> {
        let GiveDesktops { image, flavor, name, recipients } = give;
        let class = match recipients {
            Recipients::One(user) => {
                let name = if name.trim().is_empty() { &image } else { &name };
                let spec = DesktopSpec::from_catalogue(name, &user, &image, &flavor);
                let id = self.services.desktops.create(by, &spec)?;
                return Ok(Outcome::DesktopCreated(wire::DesktopCreated { id, owner: user }));
            }
            Recipients::Class(class) => class,
        };
        let mut given = wire::DesktopsGiven { created: Vec::new(), failed: Vec::new() };
        for outcome in self.services.desktops.create_for_class(by, &class, &image, &flavor, &name)? {
            match outcome.result {
                Ok(id) => given.created.push(wire::GivenDesktop { user: outcome.user, id }),
                Err(error) => {
                    given.failed.push(wire::NotGiven { user: outcome.user, error: error.for_administrator() })
                }
            }
        }
        Ok(Outcome::DesktopsGiven(given))
    }
}

fn done<E: Into<ServiceError>>(result: Result<(), E>) -> Result<Outcome, ServiceError> {
    result.map(|()| Outcome::Done).map_err(Into::into)
}

fn flavor_wire(flavor: Flavor) -> wire::Flavor {
    wire::Flavor { name: flavor.name, vcpus: flavor.vcpus, ram: flavor.ram_mib, disk: flavor.disk_gib }
}

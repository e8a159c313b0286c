//! The cloud's credentials, from a file in the form of OpenStack's `clouds.yaml`
//! (the subset thindesk uses): password or application-credential authentication,
//! Keystone v3. The file holds a secret, so it must be readable by its owner only.

use super::OpenStackError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use thindesk_shared::Secret;

#[derive(Debug, Deserialize)]
struct CloudsFile {
    clouds: BTreeMap<String, CloudEntry>,
}

#[derive(Debug, Deserialize)]
struct CloudEntry {
    auth: AuthEntry,
    #[serde(default)]
    auth_type: Option<String>,
    #[serde(default)]
    region_name: Option<String>,
    #[serde(default)]
    interface: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AuthEntry {
    auth_url: String,
    username: Option<String>,
    password: Option<Secret>,
    project_name: Option<String>,
    project_id: Option<String>,
    user_domain_name: Option<String>,
    project_domain_name: Option<String>,
    application_credential_id: Option<String>,
    application_credential_secret: Option<Secret>,
}

/// How thindesk proves who it is to Keystone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user's password, scoped to one project.
    Password { username: String, password: Secret, user_domain: String, project: ProjectRef },
    /// An application credential (it carries its project itself).
    ApplicationCredential { id: String, secret: Secret },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: String },
}

/// One cloud of the file: where Keystone is and how to authenticate there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    pub name: String,
    /// Keystone's v3 URL, without a trailing slash.
    pub auth_url: String,
    pub credential: Credential,
    pub region: Option<String>,
    /// Which endpoints of the catalogue to use: `public` unless the file says.
    pub interface: String,
}

impl Cloud {
    /// The project as the file names it, for people: `"name" (domain D)`, `id X`,
    /// or the application credential's.
    pub fn project_label(&self) -> String {
        match &self.credential {
            Credential::Password { project: ProjectRef::Name { name, domain }, .. } => {
                format!("{name:?} (domain {domain:?})")
            }
            Credential::Password { project: ProjectRef::Id(id), .. } => format!("id {id}"),
            Credential::ApplicationCredential { id, .. } => format!("of application credential {id}"),
        }
    }

    /// Reads cloud `name` from the clouds.yaml-style file at `path`.
    pub fn load(path: &Path, name: &str) -> Result<Cloud, OpenStackError> {
        let config = |what: String| OpenStackError::Config(format!("{}: {what}", path.display()));
        check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| config(format!("cannot be read: {e}")))?;
        Self::parse(&text, name).map_err(config)
    }

    /// Reads cloud `name` from the text of a clouds.yaml-style file.
    pub fn parse(text: &str, name: &str) -> Result<Cloud, String> {
        let file: CloudsFile = serde_norway::from_str(text).map_err(|e| format!("is not a clouds.yaml: {e}"))?;
        let Some(entry) = file.clouds.get(name) else {
            let known: Vec<&str> = file.clouds.keys().map(String::as_str).collect();
            return Err(format!("has no cloud {name:?} (it has: {})", known.join(", ")));
        };
        let auth = &entry.auth;
        let missing = |field: &str| format!("cloud {name:?} has no auth.{field}");
        let auth_type = entry.auth_type.as_deref().unwrap_or("password");
        let credential = match auth_type {
            "password" | "v3password" => {
                let project = match (&auth.project_id, &auth.project_name) {
                    (Some(id), _) => ProjectRef::Id(id.clone()),
                    (None, Some(project)) => ProjectRef::Name {
                        name: project.clone(),
                        domain: auth.project_domain_name.clone().unwrap_or_else(|| "Default".to_owned()),
                    },
                    (None, None) => return Err(missing("project_name")),
                };
                Credential::Password {
                    username: auth.username.clone().ok_or_else(|| missing("username"))?,
                    password: auth.password.clone().ok_or_else(|| missing("password"))?,
                    user_domain: auth.user_domain_name.clone().unwrap_or_else(|| "Default".to_owned()),
                    project,
                }
            }
            "v3applicationcredential" => Credential::ApplicationCredential {
                id: auth.application_credential_id.clone().ok_or_else(|| missing("application_credential_id"))?,
                secret: auth
                    .application_credential_secret
                    .clone()
                    .ok_or_else(|| missing("application_credential_secret"))?,
            },
            other => {
                return Err(format!(
                    "cloud {name:?}: auth_type {other:?} is not supported (password or v3applicationcredential)"
                ));
            }
        };
        let mut auth_url = auth.auth_url.trim_end_matches('/').to_owned();
        if !auth_url.ends_with("/v3") {
            auth_url.push_str("/v3");
        }
        Ok(Cloud {
            name: name.to_owned(),
            auth_url,
            credential,
            region: entry.region_name.clone(),
            interface: entry.interface.clone().unwrap_or_else(|| "public".to_owned()),
        })
    }
}

/// The credentials file must be readable by its owner only.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), OpenStackError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path)
        .map_err(|e| OpenStackError::Config(format!("{}: cannot be read: {e}", path.display())))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(OpenStackError::Config(format!(
            "{} holds a secret but is mode {mode:o}; make it readable by its owner only (chmod 600)",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), OpenStackError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "
clouds:
  thindesk:
    auth:
      auth_url: http://127.0.0.1:35357/v3
      username: thindesk
      password: s3cret
      project_name: thindesk
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
  app:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example/
      application_credential_id: abc
      application_credential_secret: xyz
";

    #[test]
    fn a_password_cloud_is_read_with_its_project() {
        let cloud = Cloud::parse(FILE, "thindesk").expect("parses");
        assert_eq!(cloud.auth_url, "http://127.0.0.1:35357/v3");
        assert_eq!(cloud.region.as_deref(), Some("RegionOne"));
        assert_eq!(cloud.interface, "public");
        let Credential::Password { username, password, project, .. } = cloud.credential else {
            panic!("a password credential");
        };
        assert_eq!(username, "thindesk");
        assert_eq!(password.expose(), "s3cret");
        assert_eq!(project, ProjectRef::Name { name: "thindesk".into(), domain: "Default".into() });
    }

    #[test]
    fn an_application_credential_gets_v3_added_to_its_url() {
        let cloud = Cloud::parse(FILE, "app").expect("parses");
        assert_eq!(cloud.auth_url, "https://keystone.example/v3");
        assert!(matches!(cloud.credential, Credential::ApplicationCredential { .. }));
    }

    #[test]
    fn a_missing_cloud_or_field_says_which() {
        let error = Cloud::parse(FILE, "nope").expect_err("no such cloud");
        assert!(error.contains("app, thindesk"), "{error}");
        let error = Cloud::parse("clouds:\n  x:\n    auth:\n      auth_url: http://k\n", "x").expect_err("fields");
        assert!(error.contains("auth.project_name"), "{error}");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("clouds.yaml");
        std::fs::write(&path, FILE).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = Cloud::load(&path, "thindesk").expect_err("world-readable");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(Cloud::load(&path, "thindesk").is_ok());
    }
}

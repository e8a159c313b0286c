//! The single-node OpenStack that `tests/openstack/up.sh` starts, as the tests reach
//! it: thindesk's credentials in `/var/lib/thindesk-openstack/clouds.yaml` (or the
//! file `THINDESK_OPENSTACK_CLOUDS` names), cloud `THINDESK_OPENSTACK_CLOUD` or
//! `thindesk`. Without a cloud that answers, a test fails under CI (`CI` set) and is
//! skipped elsewhere, loudly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use thindesk_server::compute::openstack::{OpenStackCompute, OpenStackConfig};

/// The Glance image and Nova flavor up.sh makes for desktops.
pub const DEMO_IMAGE: &str = "thindesk-demo";
pub const TINY_FLAVOR: &str = "thindesk.tiny";
/// The network a guest with internet is put on.
pub const INTERNET_CIDR: &str = "10.90.0.";

/// Where the test cloud's credentials are, and which cloud of the file.
#[derive(Debug, Clone)]
pub struct TestCloud {
    pub clouds_file: PathBuf,
    pub cloud: String,
}

impl TestCloud {
    /// The test cloud, if it answers; else `None` after saying so loudly (and a
    /// failure under CI, where up.sh has run).
    pub fn find(test: &str) -> Option<TestCloud> {
        let clouds_file = std::env::var_os("THINDESK_OPENSTACK_CLOUDS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/thindesk-openstack/clouds.yaml"));
        let cloud = std::env::var("THINDESK_OPENSTACK_CLOUD").unwrap_or_else(|_| "thindesk".to_owned());
        let found = TestCloud { clouds_file, cloud };
        let missing = if found.clouds_file.is_file() {
            let data_dir = tempfile::tempdir().expect("dir");
            match found.driver("test-probe", data_dir.path()) {
                Ok(driver) => match driver.check() {
                    Ok(_) => return Some(found),
                    Err(error) => format!("needs the cloud of {} to answer: {error}", found.clouds_file.display()),
                },
                Err(error) => format!("needs a usable {}: {error}", found.clouds_file.display()),
            }
        } else {
            format!("needs a cloud's credentials in {} (run tests/openstack/up.sh)", found.clouds_file.display())
        };
        crate::vm::prerequisite(test, Some(missing));
        None
    }

    /// [`TestCloud::find`] from async code (the driver's HTTP client blocks).
    pub async fn find_async(test: &str) -> Option<TestCloud> {
        let test = test.to_owned();
        tokio::task::spawn_blocking(move || Self::find(&test)).await.expect("joined")
    }

    /// The driver's settings for the installation marked `installation`, its displays
    /// on loopback with the TLS identity of `data_dir` (made there if missing).
    pub fn config(&self, installation: &str, data_dir: &Path) -> OpenStackConfig {
        let tls_dir = thindesk_server::tls::directory(data_dir);
        thindesk_server::tls::ensure(&tls_dir, &["127.0.0.1".to_owned()]).expect("a TLS identity");
        OpenStackConfig {
            installation: installation.to_owned(),
            display_address: std::net::Ipv4Addr::LOCALHOST.into(),
            ..OpenStackConfig::new(&self.clouds_file, &self.cloud, data_dir)
        }
    }

    /// A driver of the installation marked `installation` (a server's data directory
    /// holds its mark in the file `installation`), with the displays of `data_dir`.
    pub fn driver(&self, installation: &str, data_dir: &Path) -> Result<OpenStackCompute, String> {
        OpenStackCompute::new(self.config(installation, data_dir)).map_err(|e| e.to_string())
    }

    /// [`TestCloud::driver`] from async code.
    pub async fn driver_async(&self, installation: &str, data_dir: &Path) -> Arc<OpenStackCompute> {
        self.driver_with(installation, data_dir, |_| {}).await
    }

    /// A driver with its settings changed by `adjust`, from async code.
    pub async fn driver_with(
        &self,
        installation: &str,
        data_dir: &Path,
        adjust: impl FnOnce(&mut OpenStackConfig) + Send + 'static,
    ) -> Arc<OpenStackCompute> {
        let mut config = self.config(installation, data_dir);
        adjust(&mut config);
        let driver = tokio::task::spawn_blocking(move || OpenStackCompute::new(config)).await.expect("joined");
        Arc::new(driver.expect("the OpenStack driver"))
    }

    /// The `[openstack]` table of a server's configuration file for this cloud.
    pub fn config_table(&self) -> String {
        format!(
            "[openstack]\nclouds_file = {:?}\ncloud = {:?}\ndeadline_secs = 300\n",
            self.clouds_file.display().to_string(),
            self.cloud
        )
    }
}

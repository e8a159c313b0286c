//! The single-node OpenStack that `tests/openstack/up.sh` starts, as the tests reach
//! it: thindesk's credentials in `/var/lib/thindesk-openstack/clouds.yaml` (or the
//! file `THINDESK_OPENSTACK_CLOUDS` names), cloud `THINDESK_OPENSTACK_CLOUD` or
//! `thindesk`. Without a cloud that answers, a test fails under CI (`CI` set) and is
//! skipped elsewhere, loudly.

use std::path::PathBuf;
use thindesk_server::compute::openstack::{OpenStackCompute, OpenStackConfig};

/// The Glance image and Nova flavor up.sh makes for desktops.
pub const DEMO_IMAGE: &str = "thindesk-demo";
pub const TINY_FLAVOR: &str = "thindesk.tiny";
/// The networks a guest with and without internet is put on.
pub const INTERNET_CIDR: &str = "10.90.0.";

/// Where the test cloud's credentials are, and which cloud of the file.
#[derive(Debug, Clone)]
pub struct TestCloud {
    pub clouds_file: PathBuf,
    pub cloud: String,
}

impl TestCloud {
    /// [`TestCloud::find`] from async code (the driver's HTTP client blocks).
    pub async fn find_async(test: &str) -> Option<TestCloud> {
        let test = test.to_owned();
        tokio::task::spawn_blocking(move || Self::find(&test)).await.expect("joined")
    }

    /// [`TestCloud::driver`] from async code.
    pub async fn driver_async(&self, installation: &str) -> std::sync::Arc<OpenStackCompute> {
        self.driver_with(installation, |_| {}).await
    }

    /// A driver with its settings changed by `adjust`, from async code.
    pub async fn driver_with(
        &self,
        installation: &str,
        adjust: impl FnOnce(&mut OpenStackConfig) + Send + 'static,
    ) -> std::sync::Arc<OpenStackCompute> {
        let mut config = OpenStackConfig {
            installation: installation.to_owned(),
            ..OpenStackConfig::new(&self.clouds_file, &self.cloud)
        };
        adjust(&mut config);
        let driver = tokio::task::spawn_blocking(move || OpenStackCompute::new(config)).await.expect("joined");
        std::sync::Arc::new(driver.expect("the OpenStack driver"))
    }

    /// The test cloud, if it answers; else `None` after saying so loudly (and a
    /// failure under CI, where up.sh has run).
    pub fn find(test: &str) -> Option<TestCloud> {
        let clouds_file = std::env::var_os("THINDESK_OPENSTACK_CLOUDS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/thindesk-openstack/clouds.yaml"));
        let cloud = std::env::var("THINDESK_OPENSTACK_CLOUD").unwrap_or_else(|_| "thindesk".to_owned());
        let found = TestCloud { clouds_file, cloud };
        let missing = if found.clouds_file.is_file() {
            match found.driver("test-probe") {
                Ok(driver) => match driver.check() {
                    Ok(_) => return Some(found),
                    Err(error) => format!("needs the cloud of {} to answer: {error}", found.clouds_file.display()),
                },
                Err(error) => format!("needs a usable {}: {error}", found.clouds_file.display()),
            }
        } else {
            format!("needs a cloud's credentials in {} (run tests/openstack/up.sh)", found.clouds_file.display())
        };
        let message = format!("{test} {missing}");
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!!!!!!! SKIPPED: {message} !!!!!!!!\n");
        None
    }

    /// A driver of the installation marked `installation` (a server's data directory
    /// holds its mark in the file `installation`).
    pub fn driver(&self, installation: &str) -> Result<OpenStackCompute, String> {
        let config = OpenStackConfig {
            installation: installation.to_owned(),
            ..OpenStackConfig::new(&self.clouds_file, &self.cloud)
        };
        OpenStackCompute::new(config).map_err(|e| e.to_string())
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

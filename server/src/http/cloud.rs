//! `POST /cloud_api` (seed 000): read the form, authorize, call the cloud service,
//! answer `{"ret_code":N,"description":"...",...}` with HTTP 200. [`describe`] is the
//! one place where failures become return codes.

use super::body::Form;
use super::reply::{ApiError, HttpError};
use super::{AppState, blocking};
use crate::compute::ComputeError;
use crate::service::{Actor, Cloud, CloudError, CloudRequest};
use serde::Serialize;
use std::net::SocketAddr;
use thindesk_shared::cloud::{
    CloudReply, Command, FlavorList, ImageList, InstanceInfo, InstanceList, LaunchedInstance, RetCode,
};
use utoipa::ToSchema;
use warp::Reply;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

/// Why a call did not succeed, whichever layer found out.
#[derive(Debug)]
enum Failure {
    /// Not a POST.
    Method(Method),
    /// The body could not be read as a form.
    Body(HttpError),
    Cloud(CloudError),
    /// The blocking pool failed the work.
    Worker(ApiError),
}

impl From<CloudError> for Failure {
    fn from(error: CloudError) -> Self {
        Self::Cloud(error)
    }
}

pub async fn cloud_api(
    method: Method,
    remote: Option<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form, HttpError>,
    state: AppState,
) -> Response {
    // CONNECT asks for a tunnel, and any 2xx answer would make hyper turn the
    // connection into one: the cloud API's always-200 answer cannot be used here.
    if method == Method::CONNECT {
        return ApiError::from(HttpError::MethodNotAllowed { method, allowed: vec![Method::POST] }).to_response();
    }
    answer(call(method, remote, &headers, form, state).await)
}

async fn call(
    method: Method,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    form: Result<Form, HttpError>,
    state: AppState,
) -> Result<Option<Extra>, Failure> {
    let key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .or_else(|| form.as_ref().ok().and_then(|form| form.get("api_key")).map(String::as_str));
    let address = remote.map(|address| address.ip());
    state.services.cloud.authorize(address, key)?;
    if method != Method::POST {
        return Err(Failure::Method(method));
    }
    let request = CloudRequest::parse(&form.map_err(Failure::Body)?)?;
    let cloud = state.services.cloud.clone();
    let actor = Actor::new("cloud-api", address);
    let outcome = blocking(move || Ok(execute(&cloud, &actor, request))).await.map_err(Failure::Worker)?;
    Ok(outcome?)
}

/// Every answer: `ret_code` and `description`, and beside them what the call adds.
#[derive(Debug, Serialize)]
pub(super) struct CloudAnswer {
    #[serde(flatten)]
    pub reply: CloudReply,
    #[serde(flatten)]
    pub extra: Option<Extra>,
}

/// The keys an answer may carry beside `ret_code` and `description`, one variant per
/// shape. The OpenAPI document lists these variants (`http::openapi`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum Extra {
    /// `launch_instance`.
    Launched(LaunchedInstance),
    /// `query_instance`.
    Instance(InstanceInfo),
    /// `list_instances`.
    Instances(InstanceList),
    /// `list_images`.
    Images(ImageList),
    /// `list_flavors`.
    Flavors(FlavorList),
    /// A failure, and why.
    Detail { detail: String },
    /// `Argument missing`, and which.
    Missing { missing: Vec<&'static str> },
}

/// Each command's keys beside `ret_code` and `description`.
fn execute(cloud: &Cloud, actor: &Actor, request: CloudRequest) -> Result<Option<Extra>, CloudError> {
    Ok(Some(match request {
        CloudRequest::Launch { image, flavor, internet, name } => {
            Extra::Launched(cloud.launch(actor, &image, &flavor, internet, &name)?)
        }
        CloudRequest::Destroy { vm_id } => {
            cloud.destroy(actor, &vm_id)?;
            return Ok(None);
        }
        CloudRequest::Query { vm_id } => Extra::Instance(cloud.query_instance(&vm_id)?),
        CloudRequest::ListInstances => Extra::Instances(InstanceList { instances: cloud.list_instances()? }),
        CloudRequest::ListImages => Extra::Images(ImageList { images: cloud.list_images()? }),
        CloudRequest::ListFlavors => Extra::Flavors(FlavorList { flavors: cloud.list_flavors()? }),
    }))
}

/// Always HTTP 200 with `application/json`, as the contract says.
fn answer(outcome: Result<Option<Extra>, Failure>) -> Response {
    let (reply, extra) = match outcome {
        Ok(extra) => (CloudReply::standard(RetCode::Success), extra),
        Err(failure) => describe(&failure),
    };
    warp::reply::json(&CloudAnswer { reply, extra }).into_response()
}

const LOG_HAS_DETAILS: &str = "the server's log has the details";

/// The return code and description of every failure, and any keys added beside them.
/// The standard descriptions are the contract's words; where the seed's client can
/// only be helped by knowing why (no room on the host, a broken catalogue), the reason
/// follows after a colon. Internals (hypervisor messages, SQL) go to the log only.
fn describe(failure: &Failure) -> (CloudReply, Option<Extra>) {
    use CloudError as E;
    use RetCode as R;
    let none = None;
    let detail = |detail: String| Some(Extra::Detail { detail });
    match failure {
        Failure::Method(method) => (
            CloudReply::standard(R::InvalidCommand),
            detail(format!("the cloud API answers POST with a form body, not {method}")),
        ),
        Failure::Body(error) => (CloudReply::standard(R::InvalidCommand), detail(error.to_string())),
        Failure::Cloud(error) => match error {
            E::PermissionDenied => (CloudReply::standard(R::PermissionDenied), none),
            E::InvalidCommand => {
                let commands: Vec<&str> = Command::ALL.iter().map(|c| c.as_str()).collect();
                (CloudReply::standard(R::InvalidCommand), detail(format!("commands: {}", commands.join(", "))))
            }
            E::ArgumentMissing(missing) => {
                (CloudReply::standard(R::ArgumentMissing), Some(Extra::Missing { missing: missing.clone() }))
            }
            E::InvalidInternet => (CloudReply::standard(R::InvalidInternet), none),
            E::InvalidName => (CloudReply::detailed(R::VmCreationFailure, &error.to_string()), none),
            E::InvalidImage(_) => (CloudReply::standard(R::InvalidImage), none),
            E::InvalidFlavor(_) => (CloudReply::standard(R::InvalidFlavor), none),
            E::InvalidVmId => (CloudReply::standard(R::InvalidVmId), none),
            E::Launch(compute) => match compute {
                ComputeError::NoCapacity(_) | ComputeError::PlatformFault(_) => {
                    tracing::error!(error = %compute, "cloud API launch: the platform refused the machine");
                    (CloudReply::detailed(R::VmCreationFailure, &compute.to_string()), none)
                }
                ComputeError::BadImage(_) | ComputeError::NotConfigured | ComputeError::PlatformConfig(_) => {
                    tracing::error!(error = %compute, "cloud API launch: the platform is misconfigured");
                    (CloudReply::detailed(R::InvalidCloudConfig, &compute.to_string()), none)
                }
                ComputeError::NoSuchMachine(_)
                | ComputeError::AlreadyDefined(_)
                | ComputeError::NoGuestAgent(_)
                | ComputeError::Failed(_) => {
                    tracing::error!(error = %compute, "cloud API launch: the hypervisor failed");
                    let detail = format!("the hypervisor failed; {LOG_HAS_DETAILS}");
                    (CloudReply::detailed(R::VmCreationFailure, &detail), none)
                }
            },
            E::Destroy(compute) => {
                tracing::error!(error = %compute, "cloud API destroy: the hypervisor failed");
                let detail = match compute {
                    ComputeError::NotConfigured | ComputeError::PlatformConfig(_) | ComputeError::PlatformFault(_) => {
                        compute.to_string()
                    }
                    _ => format!("the hypervisor could not free the virtual machine; {LOG_HAS_DETAILS}"),
                };
                (CloudReply::detailed(R::InvalidCloudConfig, &detail), none)
            }
            E::Store(store) => {
                tracing::error!(error = %store, "cloud API: the database failed");
                (
                    CloudReply::detailed(
                        R::InvalidCloudConfig,
                        &format!("the platform's database failed; {LOG_HAS_DETAILS}"),
                    ),
                    none,
                )
            }
        },
        Failure::Worker(error) => {
            tracing::error!(?error, "cloud API: a worker failed");
            (CloudReply::detailed(R::InvalidCloudConfig, &format!("the platform failed; {LOG_HAS_DETAILS}")), none)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_description(failure: Failure) -> (u8, String) {
        let (reply, _) = describe(&failure);
        (reply.ret_code, reply.description)
    }

    #[test]
    fn no_capacity_is_7_and_says_why() {
        let failure = Failure::Cloud(CloudError::Launch(ComputeError::NoCapacity(
            "not enough free memory on the host (1024 MiB free, 2048 MiB needed)".into(),
        )));
        let (code, description) = code_and_description(failure);
        assert_eq!(code, 7);
        assert!(description.starts_with("Virtual machine creation failed: "), "{description}");
        assert!(description.contains("not enough free memory on the host (1024 MiB free"), "{description}");
    }

    #[test]
    fn a_broken_image_or_no_hypervisor_is_8_and_says_what_is_wrong() {
        let bad = code_and_description(Failure::Cloud(CloudError::Launch(ComputeError::BadImage(
            "/srv/images/x.qcow2 is not a qcow2 image".into(),
        ))));
        assert_eq!(bad.0, 8);
        assert!(bad.1.contains("not a qcow2 image"), "{}", bad.1);
        let none = code_and_description(Failure::Cloud(CloudError::Launch(ComputeError::NotConfigured)));
        assert_eq!(none.0, 8);
        assert!(none.1.contains("no compute driver"), "{}", none.1);
    }

    #[test]
    fn other_hypervisor_failures_are_7_without_internals() {
        let (code, description) =
            code_and_description(Failure::Cloud(CloudError::Launch(ComputeError::Failed("qmp: secret-ish".into()))));
        assert_eq!(code, 7);
        assert!(!description.contains("qmp"), "{description}");
    }

    #[test]
    fn the_standard_codes_carry_exactly_the_contracts_words() {
        let cases = [
            (Failure::Cloud(CloudError::PermissionDenied), 9, "Permission denied"),
            (Failure::Cloud(CloudError::InvalidCommand), 1, "Invalid command"),
            (Failure::Method(Method::GET), 1, "Invalid command"),
            (Failure::Cloud(CloudError::ArgumentMissing(vec!["vm_id"])), 2, "Argument missing"),
            (Failure::Cloud(CloudError::InvalidImage("x".into())), 3, "Invalid image name"),
            (Failure::Cloud(CloudError::InvalidFlavor("x".into())), 4, "Invalid flavor name"),
            (Failure::Cloud(CloudError::InvalidInternet), 5, "Invalid internet access setting"),
            (Failure::Cloud(CloudError::InvalidVmId), 6, "Invalid virtual machine id"),
        ];
        for (failure, code, words) in cases {
            assert_eq!(code_and_description(failure), (code, words.to_owned()));
        }
    }
}

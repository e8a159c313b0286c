pub mod compute;
pub mod service;
pub mod store;

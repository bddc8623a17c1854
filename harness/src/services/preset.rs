//! The extension point for built-in kinds of service: a [`PresetKind`] supplies what a
//! generic description cannot — the environment its protocol needs, a protocol readiness,
//! a set-up once ready, and who leads. Its image is `scenario::Preset::image`. A new preset is
//! a module with one of these, a variant of `scenario::Preset` and a line in [`kind`].

use super::{
    datastore, machine, memcached, postgres, toy_api, zookeeper, Addresses, ServiceError,
    READY_TIMEOUT,
};
use crate::scenario::plan::{Plan, Service};
use crate::scenario::Preset;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A future of a preset step: Ok, or what is still missing.
pub(crate) type Answer<'a, T = ()> =
    Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'a>>;

/// What a preset step looks at.
pub(crate) struct Cx<'a> {
    pub plan: &'a Plan,
    pub service: &'a Service,
    pub addresses: &'a Addresses,
    /// The run's certificates for its machines' engines (where the caller has the engine).
    pub tls: Option<&'a crate::engine::tls::RunTls>,
}

/// One built-in kind of service.
pub(crate) trait PresetKind: Sync {
    /// Environment of each replica (one list per replica), before the service's own `env`.
    fn env(&self, cx: &Cx<'_>) -> Vec<Vec<String>> {
        vec![vec![]; cx.service.replicas.len()]
    }

    /// Whether `replicas` answer as the protocol says they should.
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, replicas: &'a [String]) -> Answer<'a>;

    /// What the service needs once ready (a first configuration).
    fn set_up<'a>(&'a self, _cx: &'a Cx<'a>) -> Answer<'a> {
        Box::pin(async { Ok(()) })
    }

    /// The current leader, for services that have one.
    fn leader<'a>(&'a self, _cx: &'a Cx<'a>) -> Answer<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }
}

/// The kind of a preset.
pub(crate) fn kind(preset: Preset) -> &'static dyn PresetKind {
    match preset {
        Preset::Zookeeper => &Zookeeper,
        Preset::ToyApi => &ToyApi,
        Preset::Datastore => &Datastore,
        Preset::Memcached => &Memcached,
        Preset::Postgres => &Postgres,
        Preset::Machine => &Machine,
    }
}

struct Zookeeper;

impl PresetKind for Zookeeper {
    fn env(&self, cx: &Cx<'_>) -> Vec<Vec<String>> {
        zookeeper::env(&cx.service.replicas)
    }

    fn ready<'a>(&'a self, cx: &'a Cx<'a>, replicas: &'a [String]) -> Answer<'a> {
        Box::pin(zookeeper::ensemble_ready(
            &cx.service.replicas,
            replicas,
            cx.addresses,
        ))
    }

    fn set_up<'a>(&'a self, cx: &'a Cx<'a>) -> Answer<'a> {
        let servers = zookeeper::connect_string(&cx.service.replicas, cx.addresses);
        Box::pin(async move { zookeeper::seed_config(&servers).await })
    }

    fn leader<'a>(&'a self, cx: &'a Cx<'a>) -> Answer<'a, Option<String>> {
        Box::pin(async move {
            // Each member's answer within 500 ms (scaled like bring-up waits: a starved JVM
            // under emulation answers `srvr` in seconds); none leading is said with the modes.
            let timeout = Duration::from_millis(500).mul_f64(super::ready_scale());
            let modes = zookeeper::modes(&cx.service.replicas, cx.addresses, timeout).await;
            match modes.iter().find(|(_, m)| m.as_deref() == Some("leader")) {
                Some((r, _)) => Ok(Some(r.clone())),
                None => Err(ServiceError::Leaderless { modes }),
            }
        })
    }
}

struct ToyApi;

impl PresetKind for ToyApi {
    fn env(&self, cx: &Cx<'_>) -> Vec<Vec<String>> {
        vec![toy_api::env(cx.plan, cx.service); cx.service.replicas.len()]
    }

    fn ready<'a>(&'a self, cx: &'a Cx<'a>, replicas: &'a [String]) -> Answer<'a> {
        let plan = cx.plan;
        let zookeeper = cx
            .service
            .uses
            .iter()
            .any(|u| plan.service(*u).is(Preset::Zookeeper));
        Box::pin(toy_api::ready(replicas, cx.addresses, zookeeper))
    }
}

/// A preset whose readiness is one protocol check per replica and that needs nothing else.
macro_rules! simple {
    ($name:ident, $module:ident) => {
        struct $name;

        impl PresetKind for $name {
            fn ready<'a>(&'a self, cx: &'a Cx<'a>, replicas: &'a [String]) -> Answer<'a> {
                Box::pin($module::ready(replicas, cx.addresses))
            }
        }
    };
}

simple!(Datastore, datastore);
simple!(Memcached, memcached);
simple!(Postgres, postgres);

struct Machine;

impl PresetKind for Machine {
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, replicas: &'a [String]) -> Answer<'a> {
        Box::pin(machine::ready(cx.service, replicas, cx.addresses, cx.tls))
    }

    fn set_up<'a>(&'a self, cx: &'a Cx<'a>) -> Answer<'a> {
        let timeout = READY_TIMEOUT.mul_f64(super::ready_scale());
        Box::pin(machine::set_up(cx.service, cx.addresses, timeout))
    }
}

//! Why a Compose file cannot be planned: [`ComposeError`], one variant per problem, each saying
//! what is wrong and how to fix it. Where it is (file:line:column of the key) is added by
//! [`super::services`], which turns it into a [`crate::scenario::ScenarioError`].

use std::path::PathBuf;

/// A problem of a Compose file (its place is the key path it comes with).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("the Compose key `{key}` is not a key of the Compose specification here (allowed: {allowed}); check its spelling and indentation")]
    UnknownKey { key: String, allowed: String },
    #[error("the Compose key `{key}` is refused: {why}; {workaround}")]
    Refused {
        key: String,
        why: &'static str,
        workaround: &'static str,
    },
    #[error("service `{service}`: {error}")]
    InService {
        service: String,
        error: Box<ComposeError>,
    },
    #[error("`${{` without its `}}` in `{text}` (write `$$` for a literal `$`)")]
    Unclosed { text: String },
    #[error("`${{{body}}}` names no variable")]
    NoVariable { body: String },
    #[error("`${{{body}}}`: `:` must be followed by -, ? or +")]
    BareColon { body: String },
    #[error("required variable {name} is missing a value: {message} (set it in the environment or the project's `.env`)")]
    Required { name: String, message: String },
    #[error("`${{{body}}}`: unknown operator after {name} (:-, -, :?, ?, :+ or +)")]
    Operator { body: String, name: String },
    #[error("the Compose file has no `services`")]
    NoServices,
    #[error("service name `{name}`: aftershock names use only a-z, 0-9 and - (rename it, e.g. `{suggestion}`)")]
    ServiceName { name: String, suggestion: String },
    #[error("`{key}` must be {expected}")]
    NotANumber {
        key: &'static str,
        expected: &'static str,
    },
    #[error("x-aftershock: `group` must be a name (the cluster this service is a member of; \"\" for none)")]
    GroupNotAName,
    #[error("x-aftershock: {error} ({hint})")]
    Extension {
        error: super::yaml::Error,
        hint: &'static str,
    },
    #[error("{error}")]
    Typed { error: super::yaml::Error },
    #[error("no service has the profile `{profile}` (the file's profiles: {known}): check the name given to `--profile` or `compose_profiles`")]
    Profile { profile: String, known: String },
    #[error("needs `image` or `build`")]
    NoImage,
    #[error("unclosed {quote} in `{line}`")]
    Quote { quote: char, line: String },
    #[error("env_file `{}`: {source} (create it, or write `env_file: [{{ path: …, required: false }}]`)", path.display())]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume of type `{kind}`: only named volumes, bind mounts and tmpfs are known")]
    VolumeType { kind: String },
    #[error("two volumes declared disks: a service has at most one disk")]
    TwoDisks,
    #[error(
        "healthcheck `test` must be [\"CMD\", …], [\"CMD-SHELL\", \"…\"], [\"NONE\"] or a string"
    )]
    HealthTest,
    #[error("healthcheck `{what}` `{text}`: {error} (write e.g. `5s`, `1m30s`)")]
    Duration {
        what: &'static str,
        text: String,
        error: humantime::DurationError,
    },
    #[error("`deploy.replicas` ({deploy}) and `scale` ({scale}) disagree (keep one)")]
    ReplicasDisagree { deploy: i64, scale: i64 },
    #[error("replicas must be at least 1, not {0}")]
    Replicas(i64),
    #[error("memory `{text}`: expected a number with b, k, m or g")]
    Memory { text: String },
    #[error("{0}")]
    Restart(String),
    #[error("depends on `{dep}`, which is not a service of this file (services: {services})")]
    NoDependency { dep: String, services: String },
    #[error("depends on `{dep}` being healthy, but the file turns `{dep}`'s health check off (give `{dep}` a `healthcheck` with a `test`, or use `condition: service_started`)")]
    NotHealthy { dep: String },
    #[error("condition `{condition}` is not a `depends_on` condition (service_started, service_healthy, service_completed_successfully)")]
    Condition { condition: String },
    #[error(
        "a long-form entry of `{kind}` needs `source` (the name of a top-level `{kind}` entry)"
    )]
    FileSource { kind: String },
    #[error("`{name}` is not defined in the top-level `{kind}` (add `{kind}: {{ {name}: {{ file: ./{name}.txt }} }}`)")]
    UndefinedFile { kind: String, name: String },
    #[error("host path `{path}` is outside the project directory {}: a run mounts only the project's files", project.display())]
    OutsideProject { path: String, project: PathBuf },
    #[error("extends `{service}`, which is not a service of {file} (services: {services})")]
    ExtendsUnknown {
        service: String,
        file: String,
        services: String,
    },
    #[error("`extends` must be a service's name or `{{ service: NAME, file: other.yml }}`")]
    ExtendsForm,
    #[error("`extends` has a cycle among: {services}")]
    ExtendsCycle { services: String },
    #[error("extends a service of {file}: {message}")]
    ExtendsFile { file: String, message: String },
    #[error("`depends_on` has a cycle among: {services}")]
    Cycle { services: String },
}

impl ComposeError {
    /// This error, about service `service`.
    pub fn in_service(self, service: &str) -> ComposeError {
        ComposeError::InService {
            service: service.to_string(),
            error: Box::new(self),
        }
    }
}

//! Images of the user's own: built from a directory with a Dockerfile (a Compose `build:`, the
//! classic builder — BuildKit needs the network), or pulled when the local engine lacks a tag
//! and a registry serves it.

use super::error::{EngineError, Result};
use super::images::{self, build_tar, context_tar, hash_file, image_exists, list_files, short};
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Builds `context` as `aftershock-build/<name>:<hash>` (the hash of its files, the Dockerfile's
/// name, the arguments and the target stage: an unchanged context is not built again) and
/// returns the tag. A Dockerfile (or a build argument) naming `aftershock/base:latest` gets
/// the project's base image made first, and the base's own content tag in the hash: a build
/// on a base that changed (a package added, as libfaketime was) is built again, not reused.
/// `target`: the stage to build (None: the last).
pub async fn build(
    docker: &Docker,
    name: &str,
    context: &Path,
    dockerfile: &str,
    args: &[(String, String)],
    target: Option<&str>,
    output: &Path,
) -> Result<String> {
    let text = std::fs::read_to_string(context.join(dockerfile)).map_err(EngineError::io(
        format!("read the Dockerfile {}", context.join(dockerfile).display()),
    ))?;
    let mentions_base = |t: &str| t.contains(images::BASE_LATEST);
    let on_base = mentions_base(&text) || args.iter().any(|(_, v)| mentions_base(v));
    let base = match on_base {
        true => Some(images::base_tag()?),
        false => None,
    };
    let hashed = {
        let (context, mut args) = (context.to_path_buf(), args.to_vec());
        args.extend(base.map(|b| ("(base)".to_string(), b)));
        // The stage is part of what is built: another stage, another tag.
        let dockerfile = match target {
            Some(t) => format!("{dockerfile}#{t}"),
            None => dockerfile.to_string(),
        };
        tokio::task::spawn_blocking(move || hash_context(&context, &dockerfile, &args))
            .await
            .expect("hash thread panicked")?
    };
    let tag = format!("aftershock-build/{name}:{hashed}");
    if image_exists(docker, &tag).await {
        return Ok(tag);
    }
    if on_base {
        images::base(docker, output).await?;
    }
    let started = Instant::now();
    let tar = context_tar(context, &[])?;
    let args: HashMap<&str, &str> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    build_tar(docker, tar, dockerfile, &args, target, &tag).await?;
    tracing::info!(image = %tag, seconds = started.elapsed().as_secs_f64(), "built {tag} from {}", context.display());
    Ok(tag)
}

fn hash_context(context: &Path, dockerfile: &str, args: &[(String, String)]) -> Result<String> {
    let mut files = vec![];
    list_files(context, Path::new(""), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(dockerfile.as_bytes());
    for (k, v) in args {
        hasher.update(format!("{k}={v}\n").as_bytes());
    }
    for f in files {
        hash_file(&mut hasher, context, &f)?;
    }
    Ok(short(hasher))
}

/// Pulls `image` (`name:tag`, a registry host in the name when it is not the default one),
/// showing its progress through tracing. An error when no registry serves it.
pub async fn pull(docker: &Docker, image: &str) -> Result<()> {
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (image, "latest"),
    };
    let options = CreateImageOptionsBuilder::default()
        .from_image(name)
        .tag(tag)
        .build();
    let started = Instant::now();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(EngineError::refused(format!("pull {image}")))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            let action = format!("pull {image}");
            return Err(EngineError::Reported { action, message });
        }
        let status = info.status.unwrap_or_default();
        if status != last_status {
            let layer = info.id.unwrap_or_default();
            tracing::info!(image, layer = %layer, "pull {image}: {status} {layer}");
            last_status = status;
        }
    }
    if !image_exists(docker, image).await {
        return Err(EngineError::Reported {
            action: format!("pull {image}"),
            message: "the pull ended without the image".into(),
        });
    }
    tracing::info!(
        image,
        seconds = started.elapsed().as_secs_f64(),
        "pulled {image} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! `lossyfs --backing DIR --mount DIR --control SOCKET`: mounts the lossy file system (as
//! root, no libfuse needed) and serves its control socket until SIGTERM, SIGINT or `quit`;
//! then unmounts.

use clap::Parser;
use lossyfs::fs::{LossyFs, Shared};
use lossyfs::state::State;
use lossyfs::Error;
use std::path::PathBuf;
use std::process::ExitCode;

/// FUSE request threads: how many delayed requests can wait at once without stalling others.
const THREADS: usize = 8;

#[derive(Parser)]
#[command(about = "A FUSE file system that loses un-fsynced changes on command")]
struct Cli {
    /// The directory that holds what is durable.
    #[arg(long)]
    backing: PathBuf,
    /// Where to mount.
    #[arg(long)]
    mount: PathBuf,
    /// The control socket (created; removed at exit).
    #[arg(long)]
    control: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "lossyfs=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "lossyfs failed");
            eprintln!("lossyfs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks SIGTERM and SIGINT in this thread (and the threads it starts) and returns a thread
/// that waits for them and says so on `quit`.
fn signals(quit: std::sync::mpsc::Sender<()>) {
    // SAFETY: plain signal-set manipulation on a local set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits on the set blocked above.
        unsafe { libc::sigwait(&set, &mut sig) };
        tracing::info!(signal = sig, "stopping");
        let _ = quit.send(());
    });
}

fn run(cli: Cli) -> Result<(), Error> {
    let (quit, stop) = std::sync::mpsc::channel();
    signals(quit.clone());
    let state = State::new(&cli.backing).map_err(Error::io(format!(
        "open the backing directory {}",
        cli.backing.display()
    )))?;
    let shared = Shared::new(state);
    let _ = std::fs::remove_file(&cli.control);
    let listener = std::os::unix::net::UnixListener::bind(&cli.control)
        .map_err(Error::io(format!("bind {}", cli.control.display())))?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("lossyfs".into()),
        fuser::MountOption::Subtype("lossyfs".into()),
    ];
    config.acl = fuser::SessionACL::All;
    // A delayed request waits in its thread; the others serve the rest meanwhile.
    config.n_threads = Some(THREADS);
    let session = fuser::spawn_mount(
        LossyFs {
            shared: shared.clone(),
        },
        &cli.mount,
        &config,
    )
    .map_err(Error::io(format!("mount {}", cli.mount.display())))?;
    tracing::info!(backing = %cli.backing.display(), mount = %cli.mount.display(), "mounted");
    std::thread::spawn(move || lossyfs::control::serve(shared, listener, quit));
    let _ = stop.recv();
    let _ = std::fs::remove_file(&cli.control);
    // The session ends only when every mount of this file system is gone, a container's bind
    // too: unmount ours, wait a little, and exit (which closes the connection) regardless.
    let (done, unmounted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(session.umount_and_join());
    });
    match unmounted.recv_timeout(std::time::Duration::from_secs(2)) {
        Ok(r) => r.map_err(Error::io(format!("unmount {}", cli.mount.display())))?,
        Err(_) => {
            tracing::warn!("the session did not end in 2 s (still bound elsewhere?); exiting")
        }
    }
    tracing::info!("unmounted");
    Ok(())
}

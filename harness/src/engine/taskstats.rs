//! Exit times from the kernel's own accounting (taskstats over generic netlink).
//!
//! A pidfd becomes readable only after the kernel has torn the process down (unmapped its
//! memory, closed its files): for a 30-thread JVM that takes 5–30 ms after it died, and the
//! teardown of two JVMs competes for the same 2 cores. The kernel sends the taskstats record
//! of a thread group from `do_exit` of its last thread *before* that teardown (`taskstats_exit`
//! runs before `exit_mm`), so the moment we receive it is the moment the process exited.
//! Listening needs root (CAP_NET_ADMIN); without it callers fall back to the pidfds alone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
const TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK: u16 = 4;
const TASKSTATS_TYPE_PID: u16 = 1;
const TASKSTATS_TYPE_TGID: u16 = 2;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
const NLM_F_REQUEST: u16 = 1;

/// One exit record: a thread (by its id) or a whole thread group (by its leader's id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Thread(u32),
    Group(u32),
}

/// A registered listener for exit records on every CPU.
pub struct ExitListener {
    fd: OwnedFd,
    family: u16,
    cpumask: String,
}

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// The attributes (type, payload) in `data`, which starts at an attribute boundary.
fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((kind, &data[4..len]));
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}

impl ExitListener {
    /// Opens a generic-netlink socket, resolves the TASKSTATS family and registers for the
    /// exit records of every CPU.
    pub fn register() -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked and owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let size: libc::c_int = 4 << 20;
        // SAFETY: setsockopt with a valid int option value.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let mut listener = ExitListener {
            fd,
            family: GENL_ID_CTRL,
            cpumask: format!("0-{}", num_cpus() - 1),
        };
        listener.send(
            CTRL_CMD_GETFAMILY,
            &attr(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0"),
        )?;
        let mut buf = vec![0u8; 65536];
        let n = listener.recv(&mut buf)?;
        let family = attrs(buf.get(20..n).unwrap_or_default())
            .into_iter()
            .find(|(k, _)| *k == CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, v)| v.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]])))
            .ok_or_else(|| io::Error::other("the kernel has no TASKSTATS netlink family"))?;
        listener.family = family;
        let mask = format!("{}\0", listener.cpumask);
        listener.send(
            TASKSTATS_CMD_GET,
            &attr(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask.as_bytes()),
        )?;
        Ok(listener)
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn send(&self, cmd: u8, payload: &[u8]) -> io::Result<()> {
        let len = 16 + 4 + payload.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&self.family.to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
        msg.extend_from_slice(&[cmd, 1, 0, 0]); // genl header: cmd, version 1
        msg.extend_from_slice(payload);
        // SAFETY: sending a buffer we own on our socket; a zeroed sockaddr_nl means the kernel.
        let sent = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: receiving into a buffer we own.
        let n = unsafe {
            libc::recv(
                self.raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Reads every pending message; returns the exits they report. A multi-threaded process's
    /// exit is its `Group` record (sent by its last thread); a single-threaded process sends
    /// only a `Thread` record.
    pub fn drain(&self) -> Vec<Exit> {
        let mut out = vec![];
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match self.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(_) => return out,
            };
            let mut data = &buf[..n];
            while data.len() >= 20 {
                let len = (u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize)
                    .min(data.len());
                let kind = u16::from_ne_bytes([data[4], data[5]]);
                if len < 20 {
                    break;
                }
                if kind == self.family {
                    for (k, nested) in attrs(&data[20..len]) {
                        let (wanted, wrap): (u16, fn(u32) -> Exit) = match k {
                            TASKSTATS_TYPE_AGGR_TGID => (TASKSTATS_TYPE_TGID, Exit::Group),
                            TASKSTATS_TYPE_AGGR_PID => (TASKSTATS_TYPE_PID, Exit::Thread),
                            _ => continue,
                        };
                        out.extend(
                            attrs(nested)
                                .into_iter()
                                .filter(|(k, _)| *k == wanted)
                                .filter_map(|(_, v)| v.get(..4))
                                .map(|b| wrap(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))),
                        );
                    }
                }
                data = &data[((len + 3) & !3).min(data.len())..];
            }
        }
    }
}

impl Drop for ExitListener {
    fn drop(&mut self) {
        let mask = format!("{}\0", self.cpumask);
        let _ = self.send(
            TASKSTATS_CMD_GET,
            &attr(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, mask.as_bytes()),
        );
    }
}

fn num_cpus() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1)
}

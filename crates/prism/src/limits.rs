//! OS limits for the runner process, applied between fork and exec: its own session (so the
//! whole group can be killed), death with the orchestrator, no new privileges, rlimits for
//! memory/CPU/open files/file size/processes, and new user + network namespaces where the
//! kernel allows them. What was applied is recorded, since a machine may refuse namespaces.

use std::os::unix::process::CommandExt;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Requested limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessLimits {
    /// Address-space cap in bytes (RLIMIT_AS); 0 = none. CUDA needs far more address space
    /// than memory (an H100 fails to initialise under 12 GiB and works under 32 GiB), so a
    /// GPU run needs a large cap or none.
    pub memory_bytes: u64,
    /// CPU seconds over all threads (RLIMIT_CPU); `None` = the stage's wall-clock bound times
    /// the machine's cores, so the wall-clock bounds fire first on a busy but honest run.
    pub cpu_seconds: Option<u64>,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Largest file the runner may write (RLIMIT_FSIZE).
    pub file_bytes: u64,
    /// Processes/threads the runner may add to those the user already has (RLIMIT_NPROC).
    pub extra_processes: u64,
    /// Try to cut the network with a new network namespace.
    pub isolate_network: bool,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 12 << 30,
            cpu_seconds: None,
            open_files: 1_024,
            file_bytes: 2 << 30,
            extra_processes: 512,
            isolate_network: true,
        }
    }
}

/// Limits as actually set (clamped to the hard limits the orchestrator itself has).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppliedLimits {
    /// RLIMIT_AS in bytes (`u64::MAX` when uncapped).
    pub memory_bytes: u64,
    /// RLIMIT_CPU in seconds.
    pub cpu_seconds: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// RLIMIT_FSIZE in bytes.
    pub file_bytes: u64,
    /// RLIMIT_NPROC (counts every task of this user, so it is the current count plus the extra).
    pub processes: u64,
    /// Own session / process group, killed as a whole.
    pub own_process_group: bool,
    /// PR_SET_NO_NEW_PRIVS and PR_SET_PDEATHSIG.
    pub no_new_privs: bool,
    /// Filled in from the runner's report: it saw a network namespace other than ours.
    pub network_isolated: Option<bool>,
    /// Environment cleared except for a fixed list.
    pub clean_environment: bool,
    /// What is not enforced on this machine, in words.
    pub not_enforced: Vec<String>,
}

fn hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let ok = unsafe { libc::getrlimit(resource, &mut current) } == 0;
    if ok {
        current.rlim_max
    } else {
        libc::RLIM_INFINITY
    }
}

/// Tasks (threads included) the current real user runs now, from /proc.
fn user_task_count() -> u64 {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() }.to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(uid.as_str()))
        })
        .map(|status| {
            status
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Threads:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(1)
        })
        .sum()
}

/// Installs the limits on `command` and says what they are.
pub fn apply(command: &mut Command, limits: &ProcessLimits, wall_seconds: f64) -> AppliedLimits {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let cpu = limits
        .cpu_seconds
        .unwrap_or((wall_seconds.ceil() as u64 + 60) * cores);
    let clamp = |want: u64, resource| want.min(hard_limit(resource));
    let memory = match limits.memory_bytes {
        0 => libc::RLIM_INFINITY,
        bytes => bytes,
    };
    let mut applied = AppliedLimits {
        memory_bytes: clamp(memory, libc::RLIMIT_AS),
        cpu_seconds: clamp(cpu, libc::RLIMIT_CPU),
        open_files: clamp(limits.open_files, libc::RLIMIT_NOFILE),
        file_bytes: clamp(limits.file_bytes, libc::RLIMIT_FSIZE),
        processes: clamp(
            user_task_count() + limits.extra_processes,
            libc::RLIMIT_NPROC,
        ),
        own_process_group: true,
        no_new_privs: true,
        network_isolated: None,
        clean_environment: true,
        not_enforced: vec![
            "filesystem: no mount namespace; the runner can read what this user can read, \
             but the data never sits in a path it is given (batches are streamed) and the \
             static sandbox forbids open/os/pathlib"
                .to_string(),
        ],
    };
    if applied.memory_bytes == libc::RLIM_INFINITY {
        applied
            .not_enforced
            .push("memory: no address-space cap was asked for (bound memory with a cgroup)".into());
    }
    let rlimits = [
        (libc::RLIMIT_AS, applied.memory_bytes),
        (libc::RLIMIT_CPU, applied.cpu_seconds),
        (libc::RLIMIT_NOFILE, applied.open_files),
        (libc::RLIMIT_FSIZE, applied.file_bytes),
        (libc::RLIMIT_NPROC, applied.processes),
        (libc::RLIMIT_CORE, 0),
    ];
    let isolate = limits.isolate_network;
    // SAFETY: the closure only makes async-signal-safe system calls (setsid, prctl, setrlimit,
    // unshare) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            for (resource, value) in rlimits {
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if isolate && libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                // Not permitted here (no unprivileged user namespaces): try the network alone,
                // then carry on; the runner reports which namespace it ended up in.
                libc::unshare(libc::CLONE_NEWNET);
            }
            Ok(())
        });
    }
    applied
}

/// This process's network namespace, to compare with the one the runner reports.
pub fn own_network_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|p| p.display().to_string())
}

/// Kills the runner's whole process group.
pub fn kill_group(pid: u32) {
    // SAFETY: kill with a negative pid signals the group we created with setsid.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

//! The jobs' processes. Each starts in a process group of its own (Unix) or a job
//! object of its own (Windows, which also ends it should the runner die), so that
//! ending a job ends whatever it started, and a terminal's Ctrl-C reaches the runner
//! alone, which then decides. Every running job is registered here, so that a stop
//! (interrupt.rs, on its own thread) can end them all at once, and no job starts
//! after it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Mutex, MutexGuard, PoisonError};

struct Registry {
    /// A stop came: nothing more may start.
    stopped: bool,
    /// The process groups (the leaders' ids) of the jobs not yet reaped.
    groups: Vec<u32>,
    /// Windows: each job's job object, by its process id.
    #[cfg(windows)]
    objects: Vec<(u32, job_object::JobObject)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    stopped: false,
    groups: Vec::new(),
    #[cfg(windows)]
    objects: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `command` in a process group of its own; `None` if a stop came first.
pub fn spawn(command: &mut Command) -> io::Result<Option<Child>> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    // Started suspended, the job can start nothing before it is in its job object.
    #[cfg(windows)]
    std::os::windows::process::CommandExt::creation_flags(
        command,
        windows_sys::Win32::System::Threading::CREATE_SUSPENDED,
    );
    // Spawning under the lock: a stop either sees this child or stops it starting.
    let mut registry = registry();
    if registry.stopped {
        return Ok(None);
    }
    #[cfg_attr(not(windows), allow(unused_mut))]
    let mut child = command.spawn()?;
    // A job that could not be put in its job object could start what no stop ends:
    // it never runs.
    #[cfg(windows)]
    {
        let object = match job_object::JobObject::for_child(&child)
            .and_then(|object| job_object::resume(&child).map(|()| object))
        {
            Ok(object) => object,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        registry.objects.push((child.id(), object));
    }
    registry.groups.push(child.id());
    Ok(Some(child))
}

/// Reaps `child` if it has ended. Under the lock, so that a stop never signals a
/// process group whose id the system may already have given to another.
pub fn try_wait(child: &mut Child) -> io::Result<Option<ExitStatus>> {
    let mut registry = registry();
    let status = child.try_wait()?;
    if status.is_some() {
        let id = child.id();
        registry.groups.retain(|g| *g != id);
        #[cfg(windows)]
        registry.objects.retain(|(pid, _)| *pid != id);
    }
    Ok(status)
}

/// Ends one job and everything in its process group or job object (it is reaped
/// by `try_wait`).
pub fn end(child: &mut Child) {
    let registry = registry();
    if !registry.groups.contains(&child.id()) {
        return;
    }
    #[cfg(unix)]
    kill_group(child);
    #[cfg(windows)]
    match registry.objects.iter().find(|(pid, _)| *pid == child.id()) {
        Some((_, object)) => object.terminate(),
        None => {
            let _ = child.kill();
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = child.kill();
    }
}

/// What a stop does: no job starts any more, and every running one is ended.
pub fn stop_all() {
    let mut registry = registry();
    registry.stopped = true;
    #[cfg(unix)]
    for group in &registry.groups {
        if let Ok(group) = i32::try_from(*group) {
            // SAFETY: plain kill(2) of a process group that is ours and not reaped.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
    #[cfg(windows)]
    for (_, object) in &registry.objects {
        object.terminate();
    }
    // Elsewhere the main thread, which holds the children, ends them (see
    // `stopped`) within its polling interval.
}

/// Whether a stop came (for the main thread, which ends the jobs where `stop_all`
/// cannot).
pub fn stopped() -> bool {
    registry().stopped
}

#[cfg(unix)]
fn kill_group(child: &mut Child) {
    if let Ok(group) = i32::try_from(child.id()) {
        // SAFETY: plain kill(2) of a process group that is ours and not reaped.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// A job object that holds one job's process and what it starts, and ends them all
/// when terminated or closed (the runner's exit closes it, however it exits). The
/// process is started suspended and let run once it is in the object, so that
/// nothing it starts escapes it.
#[cfg(windows)]
mod job_object {
    use std::io;
    use std::os::windows::io::AsRawHandle;
    use std::process::Child;
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
    };
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
        SetInformationJobObject, TerminateJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    };
    use windows_sys::Win32::System::Threading::{OpenThread, ResumeThread, THREAD_SUSPEND_RESUME};

    pub struct JobObject(HANDLE);

    // SAFETY: a job object's handle may be used from any thread.
    unsafe impl Send for JobObject {}

    impl JobObject {
        /// A job object that ends `child` and everything it starts when it is
        /// terminated or closed; the system's reason if it refuses.
        pub fn for_child(child: &Child) -> io::Result<JobObject> {
            let refused = |what: &str| {
                let error = io::Error::last_os_error();
                io::Error::new(error.kind(), format!("cannot {what}: {error}"))
            };
            // SAFETY: null attributes and name make an anonymous job object.
            let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
            if handle.is_null() {
                return Err(refused("create a job object"));
            }
            let object = JobObject(handle);
            let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            // SAFETY: `limits` is the structure the information class names, with its size.
            let set = unsafe {
                SetInformationJobObject(
                    handle,
                    JobObjectExtendedLimitInformation,
                    (&raw const limits).cast(),
                    std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                )
            };
            if set == 0 {
                return Err(refused("make a job object end its processes when closed"));
            }
            // SAFETY: both handles are valid: the child is not yet waited for.
            let assigned =
                unsafe { AssignProcessToJobObject(handle, child.as_raw_handle() as HANDLE) };
            if assigned == 0 {
                return Err(refused("put the job in a job object"));
            }
            Ok(object)
        }

        pub fn terminate(&self) {
            // SAFETY: our own valid handle.
            unsafe { TerminateJobObject(self.0, 1) };
        }
    }

    /// Lets a child started suspended run: its one thread, found in a snapshot of
    /// the system's threads (std keeps the thread's handle to itself).
    pub fn resume(child: &Child) -> io::Result<()> {
        let pid = child.id();
        // SAFETY: a snapshot of every process's threads; the handle is closed below.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
        if snapshot == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        let mut entry = THREADENTRY32 {
            dwSize: std::mem::size_of::<THREADENTRY32>() as u32,
            ..THREADENTRY32::default()
        };
        let mut resumed = 0;
        let mut error = None;
        // SAFETY: `entry` is a THREADENTRY32 with its size set, valid for writes.
        let mut more = unsafe { Thread32First(snapshot, &mut entry) } != 0;
        while more {
            if entry.th32OwnerProcessID == pid {
                // SAFETY: plain OpenThread; the handle is closed below.
                let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
                // SAFETY: a valid thread handle of ours, closed once.
                match !thread.is_null() && unsafe { ResumeThread(thread) } != u32::MAX {
                    true => resumed += 1,
                    false => error = Some(io::Error::last_os_error()),
                }
                if !thread.is_null() {
                    // SAFETY: as above.
                    unsafe { CloseHandle(thread) };
                }
            }
            // SAFETY: as for Thread32First.
            more = unsafe { Thread32Next(snapshot, &mut entry) } != 0;
        }
        // SAFETY: our own snapshot handle, closed once.
        unsafe { CloseHandle(snapshot) };
        match (resumed, error) {
            (0, Some(e)) => Err(e),
            (0, None) => Err(io::Error::other("its thread was not found to resume it")),
            _ => Ok(()),
        }
    }

    impl Drop for JobObject {
        fn drop(&mut self) {
            // SAFETY: our own handle, closed once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

/// Blocks until `pid` has ended, without reaping it (so its id stays ours until
/// `try_wait` reaps it under the lock).
#[cfg(unix)]
pub fn wait_for_end(pid: u32) {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(2) on our own child, with WNOWAIT: it stays to be reaped.
        let done =
            unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if done == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

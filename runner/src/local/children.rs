//! The jobs' processes, and everything they start. Each job starts in a session of
//! its own (Unix: no controlling terminal, so it cannot push input into the user's
//! shell, and a terminal's Ctrl-C reaches the runner alone, which then decides) or a
//! job object of its own (Windows, which also ends it should the runner die). Every
//! running job is registered in the run's `Processes`, which local mode shares with
//! its stop hook, so that a stop (interrupt.rs, on its own thread) can end them all
//! at once, and no job starts after it.
//!
//! Nothing a job starts may outlive it: when a job ends, its process group is killed
//! before it is reaped; on Linux the runner is also the "child subreaper" of its
//! jobs' descendants, so that whatever left the job's group or session (`setsid`, a
//! double fork) is re-parented to the runner when its parent ends, and
//! `end_all_descendants` kills and reaps them all before the commit and the cleanup.
//! A job also dies with the runner, even SIGKILLed (Linux: `PR_SET_PDEATHSIG`).

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
    /// Linux: the runner's children from before it started any job (a shell's `cmd &
    /// exec dtlto-runner` leaves them): not its jobs', never signalled nor reaped.
    #[cfg(target_os = "linux")]
    foreign: Vec<u32>,
}

/// The run's jobs' processes: shared by the main thread, which starts and reaps
/// them, and the stop hook, which ends them.
pub struct Processes {
    registry: Mutex<Registry>,
}

impl Default for Processes {
    fn default() -> Self {
        Processes::new()
    }
}

impl Processes {
    /// No process yet.
    pub fn new() -> Processes {
        Processes {
            registry: Mutex::new(Registry {
                stopped: false,
                groups: Vec::new(),
                #[cfg(windows)]
                objects: Vec::new(),
                #[cfg(target_os = "linux")]
                foreign: Vec::new(),
            }),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the runner the reaper of whatever its jobs leave running (Linux; elsewhere
    /// there is no such thing, and only a job's process group is ended with it). Called
    /// once, before the first job starts.
    pub fn become_reaper(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let mut registry = self.registry();
            // SAFETY: plain prctl(2) on this process.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                return Err(io::Error::last_os_error());
            }
            registry.foreign = reaper::children()?;
        }
        Ok(())
    }

    /// Starts `command` in a session of its own; `None` if a stop came first. Jobs are
    /// started from the main thread, which lives as long as the run: on Linux a job
    /// dies with the thread that started it (`PR_SET_PDEATHSIG` follows the parent
    /// thread, not the process).
    pub fn spawn(&self, command: &mut Command) -> io::Result<Option<Child>> {
        #[cfg(unix)]
        {
            let runner = std::process::id();
            // SAFETY: `detach` makes only async-signal-safe system calls and allocates
            // nothing, as code between fork and exec must.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(command, move || detach(runner));
            }
        }
        // Started suspended, the job can start nothing before it is in its job object.
        #[cfg(windows)]
        std::os::windows::process::CommandExt::creation_flags(
            command,
            windows_sys::Win32::System::Threading::CREATE_SUSPENDED,
        );
        // Spawning under the lock: a stop either sees this child or stops it starting.
        let mut registry = self.registry();
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
    pub fn try_wait(&self, child: &mut Child) -> io::Result<Option<ExitStatus>> {
        let mut registry = self.registry();
        // What the job left in its process group is ended with it, while the group's id
        // is still the job's (its leader not yet reaped): a job is reaped only once it
        // is seen to have ended, and its group killed.
        #[cfg(unix)]
        match has_ended(child.id()) {
            Some(false) => return Ok(None),
            Some(true) => kill_group(child),
            // Let std say what is wrong, or give the status it already has.
            None => {}
        }
        let status = child.try_wait()?;
        if status.is_some() {
            let id = child.id();
            // What the job started is ended, and gone, before the job counts as ended
            // (closing the object would end it too, but without waiting).
            #[cfg(windows)]
            if let Some((_, object)) = registry.objects.iter().find(|(pid, _)| *pid == id) {
                object.terminate();
                object.wait_until_empty();
            }
            registry.groups.retain(|g| *g != id);
            #[cfg(windows)]
            registry.objects.retain(|(pid, _)| *pid != id);
        }
        Ok(status)
    }

    /// Ends one job and everything in its process group or job object (it is reaped
    /// by `try_wait`).
    pub fn end(&self, child: &mut Child) {
        let registry = self.registry();
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
    pub fn stop_all(&self) {
        let mut registry = self.registry();
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

    /// Ends every job and every process a job started, and reaps all but the jobs
    /// themselves (the main thread's `try_wait` reaps those): when it returns, none of
    /// them runs any more (on Linux, where the runner is their reaper; elsewhere, what
    /// left its job's process group may). The main thread calls it before the commit
    /// and the cleanup, on every path; a stop calls it from its hook.
    pub fn end_all_descendants(&self) {
        let registry = self.registry();
        #[cfg(unix)]
        {
            for group in &registry.groups {
                if let Ok(group) = i32::try_from(*group) {
                    // SAFETY: plain kill(2) of a process group that is ours and not reaped.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                }
            }
            // Once a job has ended, what it started is re-parented to the runner.
            for job in &registry.groups {
                wait_for_end(*job);
            }
        }
        #[cfg(target_os = "linux")]
        reaper::end_strays(&registry.groups, &registry.foreign);
        #[cfg(windows)]
        for (_, object) in &registry.objects {
            object.terminate();
            object.wait_until_empty();
        }
    }

    /// Whether a stop came (for the main thread, which ends the jobs where `stop_all`
    /// cannot).
    pub fn stopped(&self) -> bool {
        self.registry().stopped
    }
}

/// In the child, between fork and exec: a session of its own (no controlling
/// terminal), and on Linux death with the runner, unless the runner is already gone.
#[cfg(unix)]
fn detach(runner: u32) -> io::Result<()> {
    // SAFETY: setsid(2), prctl(2) and getppid(2) are async-signal-safe system calls.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        #[cfg(target_os = "linux")]
        {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The runner died before the death signal was set: nobody would send it.
            if u32::try_from(libc::getppid()).ok() != Some(runner) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = runner;
    }
    Ok(())
}

/// Whether the child `pid` has ended (it is not reaped); `None` if the system does
/// not say (it was reaped already).
#[cfg(unix)]
fn has_ended(pid: u32) -> Option<bool> {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid(2) on our own child, with WNOWAIT: it stays to be reaped. With
    // WNOHANG, a child still running leaves `info` zeroed.
    let done = unsafe {
        libc::waitid(
            libc::P_PID,
            libc::id_t::from(pid),
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    (done == 0).then_some(info.si_signo == libc::SIGCHLD)
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
        AssignProcessToJobObject, CreateJobObjectW, JobObjectBasicAccountingInformation,
        JobObjectExtendedLimitInformation, QueryInformationJobObject, SetInformationJobObject,
        TerminateJobObject, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
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

        /// Waits until no process is left in the object (terminating is
        /// asynchronous), for at most 10 s; at once if the system cannot say.
        pub fn wait_until_empty(&self) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let mut info = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
                // SAFETY: `info` is the structure the information class names, with
                // its size; a null length out-parameter is allowed.
                let asked = unsafe {
                    QueryInformationJobObject(
                        self.0,
                        JobObjectBasicAccountingInformation,
                        (&raw mut info).cast(),
                        std::mem::size_of::<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION>() as u32,
                        std::ptr::null_mut(),
                    )
                };
                if asked == 0 || info.ActiveProcesses == 0 || std::time::Instant::now() > deadline {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
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

/// Linux: the runner's own children, from /proc, and ending those that are not jobs.
#[cfg(target_os = "linux")]
mod reaper {
    use std::io;

    /// The ids of the runner's children (of any of its threads), from each thread's
    /// `/proc/self/task/TID/children`; where the kernel lacks those files
    /// (CONFIG_PROC_CHILDREN), from every process's parent in /proc/PID/stat.
    pub fn children() -> io::Result<Vec<u32>> {
        match children_of_threads() {
            Ok(found) => Ok(found),
            Err(error) if error.kind() == io::ErrorKind::NotFound => children_by_scan(),
            Err(error) => Err(error),
        }
    }

    /// What each thread's `children` file lists. A child a thread starts or reaps
    /// while it is read may be missed: the callers read again until nothing is left.
    fn children_of_threads() -> io::Result<Vec<u32>> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task")?.flatten() {
            let text = match std::fs::read_to_string(task.path().join("children")) {
                Ok(text) => text,
                // A thread that ended meanwhile has no file: it has no children.
                Err(error) if error.kind() == io::ErrorKind::NotFound && task.path().exists() => {
                    return Err(error)
                }
                Err(_) => continue,
            };
            found.extend(
                text.split_ascii_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            );
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Each process whose parent, in /proc/PID/stat, is the runner.
    fn children_by_scan() -> io::Result<Vec<u32>> {
        let runner = std::process::id();
        let entries = std::fs::read_dir("/proc")
            .map_err(|error| io::Error::new(error.kind(), format!("cannot list /proc: {error}")))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // A process that ended meanwhile has no stat to read: it is not a child.
            let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
                continue;
            };
            if parent_in_stat(&stat) == Some(runner) {
                found.push(pid);
            }
        }
        Ok(found)
    }

    /// The parent's id in a /proc/PID/stat line: `pid (comm) state ppid ...`, where
    /// `comm` may hold spaces and parentheses (the last `)` ends it).
    pub fn parent_in_stat(stat: &[u8]) -> Option<u32> {
        let end = stat.iter().rposition(|&b| b == b')')?;
        let rest = std::str::from_utf8(&stat[end + 1..]).ok()?;
        rest.split_ascii_whitespace().nth(1)?.parse().ok()
    }

    /// Kills and reaps every child of the runner that is neither a job (`jobs`, whose
    /// `Child` reaps it) nor `foreign`, again until none is left: each one reaped
    /// leaves its own children to the runner. Only children are signalled: their ids
    /// cannot be another process's until they are reaped.
    pub fn end_strays(jobs: &[u32], foreign: &[u32]) {
        loop {
            let Ok(children) = children() else { return };
            let strays: Vec<u32> = children
                .into_iter()
                .filter(|pid| !jobs.contains(pid) && !foreign.contains(pid))
                .collect();
            if strays.is_empty() {
                return;
            }
            for pid in &strays {
                let Ok(pid) = i32::try_from(*pid) else {
                    continue;
                };
                // SAFETY: kill(2) and getpgid(2) on a child of ours, not reaped: its id,
                // and that of a group it leads, are still its own.
                unsafe {
                    if libc::getpgid(pid) == pid {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            for pid in strays {
                let Ok(pid) = i32::try_from(pid) else {
                    continue;
                };
                loop {
                    // SAFETY: waitpid(2) on one child of ours; a null status is allowed.
                    let reaped = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                    if reaped >= 0
                        || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted
                    {
                        break;
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_parent_is_read_past_a_command_name_with_parentheses() {
            assert_eq!(super::parent_in_stat(b"42 (a) b) S 7 42 42 0"), Some(7));
            assert_eq!(super::parent_in_stat(b"42 (sh) R 1 1 1"), Some(1));
            assert_eq!(super::parent_in_stat(b"garbage"), None);
        }

        #[test]
        fn the_threads_children_files_list_what_a_scan_finds() {
            let mut child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("sleep starts");
            let listed = super::children_of_threads().expect("children files");
            let scanned = super::children_by_scan().expect("a scan of /proc");
            let _ = child.kill();
            let _ = child.wait();
            assert!(listed.contains(&child.id()), "{listed:?}");
            assert!(scanned.contains(&child.id()), "{scanned:?}");
        }
    }
}

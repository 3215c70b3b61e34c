//! [`mpirun`]: starts a program on N local ranks with Open MPI's `mpirun`, over loopback
//! only, and never waits forever — for tests and scripts.

use std::io;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether `mpirun` can be started.
pub fn mpirun_available() -> bool {
    Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// For tests that need `mpirun`: true when it can be started; otherwise prints that the
/// test is skipped and returns false — or panics when `MIXPREC_REQUIRE_MPI=1` (CI).
pub fn mpirun_or_skip() -> bool {
    if mpirun_available() {
        return true;
    }
    assert!(
        std::env::var("MIXPREC_REQUIRE_MPI").as_deref() != Ok("1"),
        "mpirun not found and MIXPREC_REQUIRE_MPI=1"
    );
    eprintln!("skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
    false
}

/// Runs `program args` on `ranks` local ranks (`mpirun --oversubscribe`, as root too,
/// TCP over loopback only) and returns its output; kills it and errors with
/// `TimedOut` after `timeout`.
pub fn mpirun(ranks: usize, program: &str, args: &[&str], timeout: Duration) -> io::Result<Output> {
    let mut child = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &ranks.to_string(),
        ])
        .arg(program)
        .args(args)
        .env("OMPI_MCA_btl", "self,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drain the pipes on threads, so a chatty program cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            child.kill()?;
            child.wait()?;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("mpirun -np {ranks} {program} did not finish in {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let join = |h: std::thread::JoinHandle<io::Result<Vec<u8>>>| {
        h.join()
            .map_err(|_| io::Error::other("the pipe reader panicked"))?
    };
    Ok(Output {
        status,
        stdout: join(out)?,
        stderr: join(err)?,
    })
}

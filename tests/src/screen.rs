//! A virtual X display for tests that run real GUI programs, and a look at what it
//! shows.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Programs the screen helpers run.
pub const TOOLS: &[&str] = &["Xvfb", "import"];

/// An `Xvfb` server on a display of its own, stopped when dropped.
pub struct VirtualScreen {
    pub display: String,
    server: Child,
}

impl VirtualScreen {
    pub fn start(width: u32, height: u32) -> Self {
        // Xvfb picks a free display itself and writes its number to the pipe
        // (`-displayfd`), so screens of tests running side by side never collide.
        // `-noreset`: an X server resets when its last client leaves, and a client
        // connecting meanwhile (the next viewer, right after one is killed) is
        // refused ("cannot open display").
        let mut server = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{width}x{height}x24"), "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let mut number = String::new();
        let stdout = server.stdout.take().expect("Xvfb's stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut number).expect("Xvfb's display");
        let display = format!(":{}", number.trim());
        assert!(display.len() > 1, "Xvfb told its display number");
        let socket = format!("/tmp/.X11-unix/X{}", number.trim());
        crate::vm::wait_until("Xvfb to listen", Duration::from_secs(30), || Path::new(&socket).exists());
        Self { display, server }
    }

    /// Kills the X server at once (SIGKILL), as a display that goes away; its clients'
    /// connections break. Waits for it to end.
    pub fn kill(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    /// Takes a screenshot of the whole screen as PNG at `png`.
    pub fn screenshot(&self, png: &Path) -> Screenshot {
        let status = Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(png)
            .status()
            .expect("import runs");
        assert!(status.success(), "import took a screenshot");
        let ppm = Command::new("convert").arg(png).arg("ppm:-").output().expect("convert runs");
        assert!(ppm.status.success(), "convert read the screenshot");
        Screenshot::from_ppm(&ppm.stdout)
    }
}

impl Drop for VirtualScreen {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Pixels of a screenshot, RGB.
pub struct Screenshot {
    pub width: usize,
    pub height: usize,
    pixels: Vec<u8>,
}

impl Screenshot {
    /// Reads a binary PPM (`P6`, 8 bits per channel).
    fn from_ppm(bytes: &[u8]) -> Self {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            let start = at;
            while !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
        }
        assert_eq!(fields[0], "P6", "a binary PPM");
        let number = |i: usize| fields[i].parse::<usize>().expect("PPM header number");
        let (width, height) = (number(1), number(2));
        assert_eq!(number(3), 255, "8 bits per channel");
        let pixels = bytes[at + 1..].to_vec();
        assert_eq!(pixels.len(), width * height * 3, "PPM size");
        Self { width, height, pixels }
    }

    /// How many pixels are within `tolerance` of `rgb` in every channel.
    pub fn count_near(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .chunks_exact(3)
            .filter(|pixel| pixel.iter().zip(rgb).all(|(have, want)| have.abs_diff(want) <= tolerance))
            .count()
    }
}

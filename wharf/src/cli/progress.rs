//! Transfer progress like docker's: one bar per layer on a terminal, plain status lines
//! otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use wharf::image::digest::Digest;
use wharf::image::registry::{Event, Progress};

pub struct Display {
    /// Verb shown while a layer moves: "Downloading" or "Pushing".
    verb: &'static str,
    /// Status once a layer has moved: "Download complete" or "Pushed".
    done: &'static str,
    exists: &'static str,
    bars: Option<(MultiProgress, Mutex<HashMap<Digest, ProgressBar>>)>,
    transferred: Mutex<Vec<Digest>>,
}

impl Display {
    pub fn new(verb: &'static str, done: &'static str, exists: &'static str) -> Self {
        let bars = std::io::stdout().is_terminal().then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                Mutex::new(HashMap::new()),
            )
        });
        Self {
            verb,
            done,
            exists,
            bars,
            transferred: Mutex::new(Vec::new()),
        }
    }

    /// Layers that were transferred, in the order they finished.
    pub fn transferred(&self) -> Vec<Digest> {
        self.transferred
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// A final status for a layer, e.g. "Pull complete" after unpacking.
    pub fn finish(&self, d: &Digest, status: &str) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(b) = bars.lock().ok().and_then(|b| b.get(d).cloned()) {
                    b.finish_with_message(status.to_string());
                }
            }
            None => println!("{}: {status}", d.short()),
        }
    }

    fn line(&self, d: &Digest, msg: &str) {
        match &self.bars {
            Some((m, _)) => {
                let _ = m.println(format!("{}: {msg}", d.short()));
            }
            None => println!("{}: {msg}", d.short()),
        }
    }
}

impl Progress for Display {
    fn event(&self, e: Event) {
        match e {
            Event::Exists(d) => self.line(&d, self.exists),
            Event::Start { digest, size } => match &self.bars {
                Some((m, bars)) => {
                    let b = m.add(ProgressBar::new(size));
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg} [{bar:50}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b.set_prefix(digest.short().to_string());
                    b.set_message(self.verb);
                    if let Ok(mut bars) = bars.lock() {
                        bars.insert(digest, b);
                    }
                }
                None => {
                    let first = if self.verb == "Downloading" {
                        "Pulling fs layer"
                    } else {
                        "Preparing"
                    };
                    println!("{}: {first}", digest.short());
                }
            },
            Event::Progress { digest, done } => {
                if let Some((_, bars)) = &self.bars {
                    if let Some(b) = bars.lock().ok().and_then(|b| b.get(&digest).cloned()) {
                        b.set_position(done);
                    }
                }
            }
            Event::Done(d) => {
                if let Ok(mut t) = self.transferred.lock() {
                    t.push(d.clone());
                }
                match &self.bars {
                    Some((_, bars)) => {
                        if let Some(b) = bars.lock().ok().and_then(|b| b.get(&d).cloned()) {
                            b.set_message(self.done);
                        }
                    }
                    None => println!("{}: {}", d.short(), self.done),
                }
            }
        }
    }
}

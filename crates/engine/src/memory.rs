//! How much memory a stage of work needed: the peak, sampled while it runs.
//!
//! Reports of a round state the memory each stage took, so an operator knows which card (or how
//! much RAM) a competition needs. On a CUDA device the figure is the GPU's memory in use (total
//! minus free, as `nvidia-smi` shows it: it includes the CUDA context and anything else on the
//! card); on the CPU it is the process's resident set. A background thread samples it every few
//! milliseconds, so a short-lived spike between two samples can be missed: the figure is a lower
//! bound of the true peak, close to it for stages that hold their buffers for more than a sample.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use candle_core::Device;

/// How often the sampler reads the memory in use.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// A running peak-memory measurement; [`PeakMemory::finish`] ends it.
pub struct PeakMemory {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    sampler: Option<JoinHandle<()>>,
}

impl PeakMemory {
    /// Starts measuring the memory in use on `device` (the process's resident memory on the CPU).
    /// When the memory cannot be read (no `/proc`, a driver error), the measurement reports `None`.
    pub fn watch(device: &Device) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = reader(device).map(|mut read| {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                loop {
                    if let Some(bytes) = read() {
                        peak.fetch_max(bytes, Ordering::Relaxed);
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        });
        Self {
            stop,
            peak,
            sampler,
        }
    }

    /// Ends the measurement: the most bytes seen in use (after one last sample), or `None` when
    /// the memory could not be read.
    pub fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let sampler = self.sampler.take()?;
        sampler.join().ok()?;
        match self.peak.load(Ordering::Relaxed) {
            0 => None,
            bytes => Some(bytes),
        }
    }
}

impl Drop for PeakMemory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Reader = Box<dyn FnMut() -> Option<u64> + Send>;

/// A function reading the memory in use now, for the device's kind.
fn reader(device: &Device) -> Option<Reader> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        let context = cuda.cuda_stream().context().clone();
        return Some(Box::new(move || {
            let (free, total) = context.mem_get_info().ok()?;
            Some(total.saturating_sub(free) as u64)
        }));
    }
    if !matches!(device, Device::Cpu) {
        return None;
    }
    resident_bytes()?;
    Some(Box::new(resident_bytes))
}

/// The process's resident set size, from `/proc/self/status` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_covers_memory_held_during_the_stage_and_released_before_its_end() {
        if resident_bytes().is_none() {
            eprintln!("SKIPPED: no /proc/self/status on this system");
            return;
        }
        let watch = PeakMemory::watch(&Device::Cpu);
        // 64 MiB touched page by page (so it is resident), held for a few samples, then freed
        // (an allocation this large is its own mapping, returned to the system at once).
        let mut block = vec![0u8; 64 << 20];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        std::thread::sleep(SAMPLE_EVERY * 6);
        let touched: u64 = block.iter().step_by(4096).map(|&b| b as u64).sum();
        drop(block);
        let after = resident_bytes().unwrap();
        let peak = watch
            .finish()
            .expect("the CPU's resident memory is readable");
        assert_eq!(touched, 16384);
        assert!(
            peak >= 64 << 20,
            "peak {peak} is below the 64 MiB block held"
        );
        assert!(
            peak >= after + (32 << 20),
            "peak {peak} should exceed the {after} bytes left after the block was freed"
        );
    }
}

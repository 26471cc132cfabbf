//! Every log line the tests' code writes, captured in memory so tests can scan it for secrets.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::fmt::MakeWriter;

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

fn buffer() -> &'static Mutex<Vec<u8>> {
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        super::hygiene::scan("a log line", &String::from_utf8_lossy(buf));
        buffer()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Installs the capturing subscriber (JSON lines, as in Lambda) once per test binary.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,aws=info,hyper=info,h2=info,rustls=info,aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_sdk_dynamodb=info,aws_sdk_secretsmanager=info,aws_sdk_sqs=info,aws_config=info,reqwest=info"))
            .with_writer(Capture)
            .try_init();
    });
}

/// Everything captured so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&buffer().lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

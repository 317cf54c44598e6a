//! OTLP trace export (`--features otlp`): when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set (e.g. `http://localhost:4318`), every request and call span goes to
//! it over OTLP/HTTP, at info level whatever `-v` says for stderr.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The export layer, or `None` when no endpoint is configured or the
/// exporter cannot be built (said on stderr; the program runs on).
pub(super) fn layer<S>() -> Option<impl Layer<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()?;
    // reqwest (under the exporter) takes TLS from rustls with ring, installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = match SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("warning: OTLP export is off: {error}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("toolhost").build())
        .build();
    let tracer = provider.tracer("toolhost");
    let _ = PROVIDER.set(provider);
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO),
    )
}

/// Sends the spans still buffered.
pub(super) fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("warning: OTLP export did not finish: {error}");
    }
}

//! OpenTelemetry traces (`HERALD_OTLP_ENDPOINT`): one span per accepted event (`ingest`) and per
//! delivery attempt (`attempt`), carrying the event, delivery and webhook ids and the outcome,
//! sent by OTLP over HTTP (JSON bodies) in batches from a thread of their own. A receiver gets
//! the attempt's trace context as a W3C `traceparent` header, so its own spans join the trace.

use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{filter::Targets, Layer};

/// The trace pipeline to `endpoint` (the collector's traces URL).
pub fn pipeline(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(endpoint)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("herald")
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Herald's own spans only (not the libraries'), whatever `HERALD_LOG` lets through to the log.
pub fn layer<S>(provider: &SdkTracerProvider) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("herald"))
        .with_filter(Targets::new().with_target("herald_server", tracing::Level::INFO))
        .boxed()
}

/// The current span's trace context as a `traceparent` header value, when traces are on.
pub fn traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

//! The gRPC channel every call goes through, reading an HTTP error as the gRPC status
//! it stands for.
//!
//! A proxy or a load balancer in front of a farm answers a call it will not pass on
//! with an HTTP error and a page of HTML (nginx's `503 Service Temporarily
//! Unavailable`), not a gRPC status. tonic then tries to read the page as gRPC
//! messages and fails with INTERNAL, which is never tried again. gRPC's own mapping
//! (doc/http-grpc-status-mapping.md in the gRPC repository) says what such an answer
//! means: 429, 502, 503 and 504 are UNAVAILABLE, a busy or restarting service, worth
//! another try. An answer that carries no `grpc-status` and is not HTTP 200 becomes
//! that status here, as a trailers-only gRPC answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::StatusCode;
use tonic::body::Body;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower_service::Service;

/// A channel whose HTTP errors come back as gRPC statuses.
#[derive(Debug, Clone)]
pub(crate) struct Transport(Channel);

impl Transport {
    pub(crate) fn new(channel: Channel) -> Transport {
        Transport(channel)
    }
}

impl Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if is_grpc(&response) {
                return Ok(response);
            }
            Ok(as_grpc_status(response.status()))
        })
    }
}

/// Whether an answer is gRPC's own, to pass on as it is: HTTP 200, a status in its
/// headers, or gRPC's content type (whose status comes in the trailers).
fn is_grpc(response: &http::Response<Body>) -> bool {
    let grpc_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    response.status() == StatusCode::OK
        || grpc_type
        || response.headers().contains_key("grpc-status")
}

/// The gRPC status an HTTP error stands for, in gRPC's mapping.
fn code_of(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// A trailers-only gRPC answer carrying the status an HTTP error stands for.
fn as_grpc_status(status: StatusCode) -> http::Response<Body> {
    let grpc = Status::new(
        code_of(status),
        format!("the server answered HTTP {status}"),
    );
    let mut response = http::Response::new(Body::empty());
    let headers = response.headers_mut();
    // Only a status whose message cannot be a header fails here, and this one can.
    let _ = grpc.add_header(headers);
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_read_as_grpcs_mapping_says() {
        for (http, code) in [
            (503, Code::Unavailable),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (504, Code::Unavailable),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (400, Code::Internal),
            (500, Code::Unknown),
        ] {
            let response = as_grpc_status(StatusCode::from_u16(http).unwrap());
            let status = Status::from_header_map(response.headers()).unwrap();
            assert_eq!(status.code(), code, "HTTP {http}");
            assert!(status.message().contains(&http.to_string()));
        }
    }

    #[test]
    fn grpcs_own_answers_pass_as_they_are() {
        let answer = |status: u16, headers: &[(&'static str, &'static str)]| {
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(*name, http::HeaderValue::from_static(value));
            }
            response
        };
        assert!(is_grpc(&answer(200, &[])));
        assert!(is_grpc(&answer(
            500,
            &[("content-type", "application/grpc+proto")]
        )));
        assert!(is_grpc(&answer(503, &[("grpc-status", "14")])));
        assert!(!is_grpc(&answer(503, &[("content-type", "text/html")])));
        assert!(!is_grpc(&answer(429, &[])));
    }
}

//! Resources that load from server functions.
//!
//! A server function's answer is decoded in the browser by `serde_json::from_slice`; Leptos'
//! default resource codec decodes the same types from the page's hydration data with
//! `serde_json::from_str`. The two readers are different types, so the browser bundle carried
//! every model's deserialiser twice. [`server_resource`] decodes hydration data through the same
//! reader as the server functions, so each deserialiser is compiled once (BENCHMARKS.md, "Under
//! 400 KiB for every page").

use leptos::{
    prelude::*,
    server::codee::{Decoder, Encoder},
};
use serde::{de::DeserializeOwned, Serialize};

/// JSON, decoded with `serde_json::from_slice` like server-function answers.
pub struct JsonSliceCodec;

impl<T: Serialize> Encoder<T> for JsonSliceCodec {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, Self::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for JsonSliceCodec {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, Self::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// A resource whose value the server renders and the browser takes over on hydration, like
/// [`Resource::new`], with [`JsonSliceCodec`].
#[track_caller]
pub fn server_resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, JsonSliceCodec>
where
    S: PartialEq + Clone + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_the_server_renders() {
        let value: Result<Vec<(String, Option<u32>)>, String> =
            Ok(vec![("a\"é".into(), Some(3)), ("b".into(), None)]);
        let encoded = <JsonSliceCodec as Encoder<_>>::encode(&value).unwrap();
        let decoded: Result<Vec<(String, Option<u32>)>, String> = JsonSliceCodec::decode(&encoded).unwrap();
        assert_eq!(decoded, value);
        assert!(<JsonSliceCodec as Decoder<Vec<u32>>>::decode("[1,").is_err());
    }
}

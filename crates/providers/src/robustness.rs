//! Property tests over every stream decoder: arbitrary bytes cut at arbitrary points never
//! make one panic, and a well-formed stream decodes to the same events however it is cut.

use proptest::prelude::*;
use switchyard_types::{ChatRequest, StreamEvent};

use crate::{anthropic, bedrock, gemini, openai};

/// Feeds `chunks` to every decoder; decoders may refuse the bytes, never panic.
fn feed_all(chunks: &[Vec<u8>]) {
    let request = ChatRequest::default();
    let mut out = Vec::new();
    let mut openai = openai::stream::Decoder::new(&request);
    let mut anthropic = anthropic::stream::Decoder::new(&request);
    let mut gemini = gemini::stream::Decoder::new(&request);
    let mut bedrock = bedrock::stream::Decoder::new(&request);
    for chunk in chunks {
        let _ = openai.push(chunk, &mut out);
        let _ = anthropic.push(chunk, &mut out);
        let _ = gemini.push(chunk, &mut out);
        let _ = bedrock.push(chunk, &mut out);
    }
    let _ = openai.finish(&mut out);
    let _ = anthropic.finish(&mut out);
    let _ = gemini.finish(&mut out);
    let _ = bedrock.finish(&mut out);
}

/// Cuts `bytes` at the given points.
fn cut(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for point in points {
        chunks.push(bytes[last..point].to_vec());
        last = point;
    }
    chunks.push(bytes[last..].to_vec());
    chunks
}

/// An OpenAI stream with text, a tool call in pieces, usage and `[DONE]`.
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"c\",\"model\":\"m\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"h\u{e9}llo \"}}]}\n\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\r\n\r\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
    "data: [DONE]\n\n",
);

fn decode_openai(chunks: &[Vec<u8>]) -> Vec<StreamEvent> {
    let mut decoder = openai::stream::Decoder::new(&ChatRequest::default());
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut out).expect("well-formed");
    }
    decoder.finish(&mut out).expect("complete");
    out
}

proptest! {
    #[test]
    fn no_decoder_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        points in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        feed_all(&cut(&bytes, &points));
    }

    #[test]
    fn no_decoder_panics_on_mangled_streams(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        points in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut bytes = OPENAI_STREAM.as_bytes().to_vec();
        for (at, value) in flips {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        feed_all(&cut(&bytes, &points));
    }

    #[test]
    fn an_openai_stream_decodes_the_same_however_it_is_cut(
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = decode_openai(&[OPENAI_STREAM.as_bytes().to_vec()]);
        prop_assert_eq!(decode_openai(&cut(OPENAI_STREAM.as_bytes(), &points)), whole);
    }
}

"""When an upstream breaks off mid-stream, the relay ends the stream with an error event in the
protocol's own format — the same event a translated stream ends with, from the same spoke code."""

import httpx
import openai
import pytest

from llmitm import relay
from llmitm.protocols import REGISTRY
from llmitm.protocols.canonical import ApiError, Context, StreamError
from llmitm.protocols.sse import SSEDecoder


@pytest.mark.parametrize("protocol", REGISTRY.names)
def test_relay_error_event_is_the_spokes_own(protocol):
    message = "upstream connection lost mid-stream: ClientPayloadError"
    assert relay.in_band_error(protocol, message) == REGISTRY.codec(protocol).render_stream_error(ApiError(502, message))


@pytest.mark.parametrize("protocol", REGISTRY.names)
def test_relay_error_event_parses_back_as_that_error(protocol):
    events = SSEDecoder().feed(relay.in_band_error(protocol, "lost mid-stream"))
    parser = REGISTRY.codec(protocol).StreamParser(Context())
    errors = [ev for sse in events for ev in parser.feed(sse.event, sse.data) if isinstance(ev, StreamError)]
    assert [e.error.message for e in errors] == ["lost mid-stream"]


def test_openai_sdk_raises_on_the_relays_responses_error_event():
    # The openai SDK raises only when an `error` event nests an `error` object; a flat one is handed
    # to the app as an ordinary event and the failure goes unnoticed.
    body = relay.in_band_error("openai-responses", "lost mid-stream")
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/responses")
    response = httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}, request=request)
    stream = openai.Stream(cast_to=object, response=response, client=openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(openai.APIError, match="lost mid-stream"):
        list(stream)

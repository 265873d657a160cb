// The tests, the fault suite and the bench decode text/event-stream with the
// client library's parser, so there is one SSE parser in pgfeed.
export { SseParser as SseDecoder, type SseEvent, type SseHandlers } from '../../src/client/sse-parser.js';

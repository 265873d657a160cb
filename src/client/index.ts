/**
 * pgfeed/client: read a pgfeed daemon from Node or a browser. connect() for
 * a live stream that resumes by itself, poll() for one page at a time. No
 * Node-only module is imported anywhere here: a browser bundle must build.
 */
export { connect, Feed, DEFAULT_BACKOFF, DEFAULT_IDLE_TIMEOUT_MS, type ConnectOptions, type BackoffOptions } from './feed.js';
export { poll, type PollOptions } from './poll.js';
export { FeedError, type ClientErrorCode } from './feed-error.js';
export type { RequestOptions, FetchLike } from './options.js';
export type { FeedSignals, FeedState, StateChange, ResetSignal, SignalName } from './signals.js';
export type { HoldReason } from './page-lifecycle.js';
export type { EventSourceLike, EventSourceConstructor } from './event-source.js';
export { SseParser, type SseEvent, type SseHandlers } from './sse-parser.js';
export type { ChangeEvent, ChangesPage, ControlEvent, ControlEvents, ErrorBody, EventNames, UnavailableCode } from '../protocol.js';
export type { ErrorCode } from '../errors.js';

// The one module that imports uWebSockets.js, so that switching from the npm
// republish to the official build is a one-line change here.
export { default as uWS } from 'uWebSockets.js';
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';

// The only module that imports uWebSockets.js. pgfeed installs it through an
// npm alias of a republish (see README, "uWebSockets.js build"); switching to
// the official build is a change to package.json alone.
import uWS from 'uWebSockets.js';

export default uWS;
export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';

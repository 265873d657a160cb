import { spawn } from 'node:child_process';
import type { Logger } from './log.js';

/**
 * What `pgfeed serve` tells systemd under `Type=notify` (the sd_notify
 * protocol): STATUS= lines for `systemctl status`, READY=1 once it serves,
 * STOPPING=1 when it begins to shut down, and WATCHDOG=1 keepalives at half
 * of WATCHDOG_USEC (the unit's WatchdogSec=). Without NOTIFY_SOCKET, nothing
 * is sent at all.
 *
 * How a message is sent. The protocol is one datagram on an AF_UNIX socket,
 * which Node cannot send. The npm bindings that can (sd-notify, unix-dgram)
 * compile a native addon with node-gyp when installed; node-unix-socket ships
 * prebuilt binaries but is one person's project. systemd's own
 * `systemd-notify` is on every host that has systemd, is kept with it, and
 * speaks the whole protocol, abstract sockets ("@...") included; so each
 * message is one run of it. Being a child process, it needs
 * NotifyAccess=all in the unit, and it waits until the manager has read its
 * message (its BARRIER=1, systemd 246 and later): a sender that had already
 * exited could not be attributed to the unit. Its cost, a process every
 * WatchdogSec/2, is nothing next to a daemon's traffic. The keepalives come
 * from an event-loop timer, so a blocked loop sends none and systemd
 * restarts the daemon.
 */
export interface ServiceManager {
  status(text: string): void;
  /** READY=1 with a status; starts the watchdog keepalives if systemd asked for them. */
  ready(status: string): void;
  /** STOPPING=1 with a status. */
  stopping(status: string): void;
  /** Stops the keepalives; resolves once every message is sent, so that none is lost to process.exit(). */
  close(): Promise<void>;
}

const NO_MANAGER: ServiceManager = { status() {}, ready() {}, stopping() {}, close: async () => {} };

/**
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from `env` and removes
 * them (as sd_notify's unset_environment does): the embedded Postgres and any
 * other child must not speak for pgfeed.
 */
export function connectServiceManager(log: Logger, env: NodeJS.ProcessEnv = process.env): ServiceManager {
  const socket = env.NOTIFY_SOCKET;
  const watchdogUsec = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!socket) return NO_MANAGER;
  const send = sender(socket, env.PATH, log);
  // WATCHDOG_PID names the process the watchdog is for: another one's is not ours to keep alive.
  const forUs = watchdogPid === undefined || Number(watchdogPid) === process.pid;
  const usec = /^[1-9]\d*$/.test(watchdogUsec ?? '') && forUs ? Number(watchdogUsec) : 0;
  let keepalive: NodeJS.Timeout | undefined;
  let pinging = false;
  const ping = () => {
    // A keepalive still waiting on the manager makes another pointless.
    if (pinging) return;
    pinging = true;
    void send(['WATCHDOG=1']).finally(() => (pinging = false));
  };
  let last = Promise.resolve();
  const queue = (lines: string[]) => (last = send(lines));
  return {
    status: (text) => void queue([statusLine(text)]),
    ready(status) {
      void queue(['READY=1', statusLine(status)]);
      if (usec && !keepalive) {
        keepalive = setInterval(ping, Math.max(1, Math.floor(usec / 2000)));
        // The daemon's sockets keep it alive; the keepalive must not keep a stopping one.
        keepalive.unref();
      }
    },
    stopping: (status) => void queue(['STOPPING=1', statusLine(status)]),
    async close() {
      clearInterval(keepalive);
      await last;
    },
  };
}

/** A status is one line: a newline would begin another assignment. */
const statusLine = (text: string) => `STATUS=${text.replace(/\s*\n\s*/g, ' ')}`;

/**
 * Sends each message in order (the next waits for the previous one), so that
 * a STATUS= sent before READY=1 cannot overtake it. A failure is logged once,
 * and again only after a message went through, not at every keepalive.
 */
function sender(socket: string, path: string | undefined, log: Logger): (lines: string[]) => Promise<void> {
  let previous = Promise.resolve();
  let failing = false;
  const run = (lines: string[]) =>
    new Promise<void>((resolve) => {
      const child = spawn('systemd-notify', lines, {
        env: { NOTIFY_SOCKET: socket, PATH: path ?? '/usr/bin:/bin' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      let settled = false;
      const done = (problem: string | undefined) => {
        if (settled) return;
        settled = true;
        if (problem && !failing) log.warn({ err: problem, socket }, 'cannot notify systemd; check that systemd-notify is installed and the unit has NotifyAccess=all');
        failing = problem !== undefined;
        resolve();
      };
      child.on('error', (err) => done(err.message));
      child.on('close', (code) => done(code === 0 ? undefined : stderr.trim().split('\n')[0] || `systemd-notify exited with ${code}`));
    });
  return (lines) => (previous = previous.then(() => run(lines)));
}

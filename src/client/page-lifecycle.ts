/**
 * What a browser page tells a feed: that the network went away (`offline`)
 * or came back (`online`), and, with pauseWhenHidden, that the page has been
 * hidden for a while. Outside a page (Node, a worker without these events)
 * there is nothing to hear and the feed is never held.
 *
 * The globals are read structurally, so this module needs neither the DOM
 * typings nor a DOM: a test can give a Node process an EventTarget and a
 * document-like object.
 */
interface Listening {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
}

interface PageGlobals extends Partial<Listening> {
  readonly navigator?: { readonly onLine?: boolean };
  readonly document?: Partial<Listening> & { readonly visibilityState?: string };
}

/** Why a feed holds its stream closed: the browser says it is offline, or the page is hidden. */
export type HoldReason = 'offline' | 'hidden';

export class PageLifecycle {
  private offline: boolean;
  private hidden = false;
  private hideTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly page: PageGlobals;
  private readonly onOnline = () => this.setOffline(false);
  private readonly onOffline = () => this.setOffline(true);
  private readonly onVisibility = () => this.visibility();

  /** `hiddenAfterMs`: how long the page must stay hidden before the feed pauses; null never pauses. */
  constructor(
    private readonly onChange: () => void,
    private readonly hiddenAfterMs: number | null,
  ) {
    this.page = globalThis as PageGlobals;
    this.offline = this.page.navigator?.onLine === false;
    if (typeof this.page.addEventListener === 'function') {
      this.page.addEventListener('online', this.onOnline);
      this.page.addEventListener('offline', this.onOffline);
    }
    if (this.hiddenAfterMs !== null && typeof this.page.document?.addEventListener === 'function') {
      this.page.document.addEventListener('visibilitychange', this.onVisibility);
      this.visibility();
    }
  }

  held(): HoldReason | null {
    return this.offline ? 'offline' : this.hidden ? 'hidden' : null;
  }

  close(): void {
    this.page.removeEventListener?.('online', this.onOnline);
    this.page.removeEventListener?.('offline', this.onOffline);
    this.page.document?.removeEventListener?.('visibilitychange', this.onVisibility);
    if (this.hideTimer !== null) clearTimeout(this.hideTimer);
  }

  private setOffline(offline: boolean): void {
    if (this.offline === offline) return;
    this.offline = offline;
    this.onChange();
  }

  private visibility(): void {
    const hidden = this.page.document?.visibilityState === 'hidden';
    if (hidden) {
      // A glance at another tab is no reason to drop the stream: only a page that stays hidden pauses.
      if (this.hideTimer === null && !this.hidden) {
        this.hideTimer = setTimeout(() => {
          this.hideTimer = null;
          this.hidden = true;
          this.onChange();
        }, this.hiddenAfterMs!);
      }
      return;
    }
    if (this.hideTimer !== null) clearTimeout(this.hideTimer);
    this.hideTimer = null;
    if (this.hidden) {
      this.hidden = false;
      this.onChange();
    }
  }
}

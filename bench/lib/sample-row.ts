// The row the writers insert, and the same row as the comparators frame it,
// so raw, naive and pgfeed move frames of the same size.

export const PAYLOAD = 'x'.repeat(64);

/** An SSE frame shaped like pgfeed's for a row of public.orders. */
export function sampleFrame(seq: number, project: string, sentUs: number): string {
  const at = new Date(sentUs / 1000).toISOString();
  const data = `{"id":${seq},"project":"${project}","sent_us":${sentUs},"payload":"${PAYLOAD}"}`;
  return `id: ${seq}\nevent: orders.insert\ndata: {"seq":${seq},"xid":"${seq}","project":"${project}","type":"orders.insert","op":"insert","table":"public.orders","data":${data},"at":"${at}"}\n\n`;
}

/** Polls `cond` until it holds; throws after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 8000, everyMs = 25): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

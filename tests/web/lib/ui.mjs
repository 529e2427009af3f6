// ui.mjs - steps through the real web UI (web/index.html) shared by the
// browser tests that drive it with playwright: a person is
// {name, id, page, ...} after their first visit.

/** `a` adds `b` by peer ID in the "Add contact" dialog (with an optional
 *  note); `b` accepts the request; resolves once `b`'s conversation list
 *  shows on `a`'s side. Returns `a`'s list item for `b`. */
export async function befriendThroughUi(a, b, wait, note = null) {
  const dlg = a.page.locator('#dlg');
  await a.page.click('#add-contact');
  await dlg.waitFor({ state: 'visible' });
  await dlg.locator('input').first().fill(b.id);
  if (note !== null) await dlg.locator('input').nth(1).fill(note);
  await dlg.locator('input').nth(note !== null ? 1 : 0).press('Enter');
  await dlg.waitFor({ state: 'hidden', timeout: wait });
  const req = b.page.locator(`#request-list li[data-peer="${a.id}"]`);
  await req.waitFor({ timeout: wait });
  await req.getByRole('button', { name: /^Accept/ }).click();
  const item = a.page.locator(`#conv-list button[data-conv="p:${b.id}"]`);
  await item.waitFor({ timeout: wait });
  return item;
}

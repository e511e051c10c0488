// operation.js: performing an ARM action from the portal: the POST, the
// long-running operation's progress in the status line, and its failure
// or refusal in the alert region. Pages call perform after their own
// confirmation.

import {request, wait} from './api.js';
import {clearAlert, progress, showError} from './ui.js';

/**
 * perform POSTs body to path (an ARM action URL with its api-version) and
 * follows the operation it starts; label names it in the status line. It
 * returns whether the action succeeded; a refusal or failure is shown.
 */
export async function perform(label, path, body) {
  clearAlert();
  try {
    const started = await request(path, {method: 'POST', body});
    if (!started?.asyncOperation) {
      progress(`${label}: done.`, 100, true);
      return true;
    }
    progress(`${label}: accepted`);
    const st = await wait(started, s => progress(`${label}: ${s.status}` +
      (s.percentComplete ? ` (${Math.round(s.percentComplete)} %)` : ''), s.percentComplete || undefined));
    progress(`${label}: ${st.status}.`, 100, true);
    if (st.status === 'Succeeded') return true;
    showError(st.error ?? {message: `The action ended ${st.status}.`}, label);
  } catch (err) {
    progress(`${label}: refused.`, undefined, true);
    showError(err, label);
  }
  return false;
}

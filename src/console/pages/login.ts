import { html, type Html } from '../html.ts';

export function loginForm(csrf: string, message?: { text: string; kind: 'error' | 'success' }): Html {
  return html`<form method="post" action="/console/login" class="card login" id="login-form">
    ${message ? html`<p class="notice ${message.kind}" id="login-message">${message.text}</p>` : ''}
    <input type="hidden" name="csrf" value="${csrf}" />
    <label for="name">Administrator</label><input id="name" type="text" name="name" autocomplete="username" required />
    <label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required />
    <p><button type="submit">Log in</button></p>
    <p class="muted">Accounts are made on the server: <code>certmdm admin create --name NAME</code>.</p>
  </form>`;
}

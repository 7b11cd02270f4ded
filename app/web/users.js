// Users (#users, admins): the table of users with their role, state and quotas; add a user, change a role,
// disable or enable, reset a lost token (a new one shown once, every other revoked) and remove a user (their
// runs stay, owned by `NAME (removed #ID)`).
"use strict";

const ROLES = ["admin", "member", "viewer"];

function showUsersError(error) { $("users-error").textContent = error ? error.message : ""; }

function showToken(user, token, revoked) {
  $("users-token-who").textContent = `${user.name}'s new token (shown once: hand it over${revoked ? `; ${revoked} other${revoked === 1 ? "" : "s"} revoked` : ""}):`;
  $("users-token-value").textContent = token;
  $("users-token").hidden = false;
}

// The row of the user the API answered with (a change answers the user as they are now).
function showUser(user) {
  $("users-saved").textContent = `${user.name}: ${user.role}, ${user.removed ? "removed" : user.disabled ? "disabled" : "enabled"}`;
  const old = $("users").querySelector(`tbody tr[data-id="${user.id}"]`);
  if (old) old.replaceWith(userRow(user)); else $("users").tBodies[0].append(userRow(user));
}

async function changeUser(user, change) {
  showUsersError(null);
  try {
    showUser(await api(`/users/${user.id}`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(change) }));
  } catch (error) { showUsersError(error); openUsers(); }
}

async function resetToken(user) {
  showUsersError(null);
  try {
    const made = await postJson(`/users/${user.id}/tokens`, { label: "reset on the page" });
    const others = (await api(`/users/${user.id}/tokens`)).data.filter((token) => token.id !== made.id && !token.revoked_at);
    for (const token of others) await api(`/users/${user.id}/tokens/${token.id}`, { method: "DELETE" });
    showToken(user, made.token, others.length);
  } catch (error) { showUsersError(error); }
}

async function removeUser(user) {
  if (!confirm(`Remove user ${user.id} (${user.name})? Their runs stay; their queued and running jobs are cancelled.`)) return;
  showUsersError(null);
  try { showUser(await api(`/users/${user.id}`, { method: "DELETE" })); } catch (error) { showUsersError(error); openUsers(); }
}

function userRow(user) {
  const tr = document.createElement("tr");
  tr.dataset.id = user.id;
  const state = user.removed ? "removed" : user.disabled ? "disabled" : "enabled";
  const quotas = Object.entries(user.quotas || {}).map(([name, value]) => `${name} ${value}`).join(", ") || "the defaults";
  const actions = document.createElement("span");
  actions.className = "actions";
  let role = user.role;
  if (!user.removed) {
    const select = document.createElement("select");
    select.setAttribute("aria-label", `role of ${user.name}`);
    for (const name of ROLES) select.add(new Option(name, name, false, name === user.role));
    select.addEventListener("change", () => changeUser(user, { role: select.value }));
    role = select;
    const button = (text, action) => {
      const made = Object.assign(document.createElement("button"), { type: "button", textContent: text });
      made.addEventListener("click", action);
      actions.append(made, " ");
    };
    button(user.disabled ? "Enable" : "Disable", () => changeUser(user, { disabled: !user.disabled }));
    button("Reset token", () => resetToken(user));
    button("Remove", () => removeUser(user));
  }
  tr.append(cell(String(user.id)), cell(user.name), cell(role), cell(state, `status status-${state}`),
    cell(user.created_at.slice(0, 10)), cell(quotas), cell(actions));
  return tr;
}

async function openUsers() {
  $("users-section").hidden = false;
  try {
    const users = (await api("/users")).data;
    $("users").tBodies[0].replaceChildren(...users.map(userRow));
    $("users-count").textContent = `${users.length} user${users.length === 1 ? "" : "s"}`;
  } catch (error) { showUsersError(error); }
}

$("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showUsersError(null);
  try {
    const made = await postJson("/users", { name: $("user-name").value.trim(), role: $("user-role").value });
    $("user-name").value = "";
    showToken(made, made.token, 0);
  } catch (error) { showUsersError(error); }
  openUsers();
});

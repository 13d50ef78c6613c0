// Who is signed in and what they may do: the token's permissions (`GET /tokens/current`),
// read once at sign-in. The console disables what the roles do not allow; the API refuses it
// anyway, so this is for the person, not for security.
import { get } from "./api.js";

/** Role id -> [area, writes]. Areas as the API's roles govern them. */
const ROLES = {
  "workspace-owner": ["all", true],
  "workspace-member": ["all", false],
  "source-admin": ["sources", true],
  "source-read-only": ["sources", false],
  "function-admin": ["functions", true],
  "function-read-only": ["functions", false],
  "tracking-plan-admin": ["tracking-plans", true],
  "tracking-plan-read-only": ["tracking-plans", false],
  "warehouse-admin": ["warehouses", true],
  "warehouse-read-only": ["warehouses", false],
};

export const session = { token: null };

/** Loads the signed-in token's record; throws the API's error when the token is not valid. */
export async function load() {
  session.token = (await get("/tokens/current")).token;
  return session.token;
}

/** Whether the token has a role that may change things in `area`. */
export function canWrite(area) {
  return (session.token?.permissions ?? []).some((p) => {
    const [roleArea, writes] = ROLES[p.roleId] ?? [];
    return writes && (roleArea === "all" || roleArea === area);
  });
}

/** A short description of the token's roles, for the header. */
export function roles() {
  return (session.token?.permissions ?? []).map((p) => p.roleName || p.roleId).join(", ");
}

// The graphql-http audit suite (`serverAudits`) against a live server:
// `node audit.mjs URL TOKEN` prints one JSON array of {id, name, status, reason}.
// Every request carries the token, as every GraphQL request to the API must.
import { serverAudits } from "graphql-http";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node audit.mjs URL TOKEN");
  process.exit(2);
}

async function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  results.push({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null });
}
console.log(JSON.stringify(results, null, 1));

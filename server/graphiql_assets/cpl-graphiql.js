// cpl-pathways GraphiQL: signed in by the session cookie, never by a token in the page.
// The CSRF token from /auth/session rides on every request (X-CPL-CSRF) and in the WebSocket's
// connection_init; it lives in memory only. The query is kept in the address (?query=), so a
// reload or a shared link opens the same query.
"use strict";

const DEFAULT_QUERY = `# Devices with their Zigbee details. The stack version and the chipset
# vendor are SSC only: every other Party reads null there.
query SscDevices {
  viewer { partyId partyCategory }
  devices(first: 5) {
    totalCount
    nodes {
      id
      modelName
      zigbeeBand
      zigbeeStackVersion
      zigbeeChipsetVendor
    }
  }
}
`;

function signInLink() {
  const next = location.pathname + location.search;
  return "/login?next=" + encodeURIComponent(next);
}

function showSignedOut(message) {
  const who = document.getElementById("cpl-who");
  who.textContent = message + " ";
  const link = document.createElement("a");
  link.href = signInLink();
  link.id = "cpl-signin";
  link.textContent = "Sign in";
  who.appendChild(link);
}

function showSignedIn(session) {
  const who = document.getElementById("cpl-who");
  const manufacturer = session.manufacturerIdentifier ? ` (${session.manufacturerIdentifier})` : "";
  who.textContent = `Signed in as ${session.partyId}, ${session.partyCategory}${manufacturer}`;
  const logout = document.getElementById("cpl-logout");
  logout.hidden = false;
  logout.addEventListener("click", async () => {
    await fetch("/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CPL-CSRF": session.csrfToken },
    });
    sessionStorage.clear(); // GraphiQL's tabs and history: the next person starts afresh
    location.assign("/login");
  });
}

function keepInAddress(params, name) {
  return (value) => {
    if (value) {
      params.set(name, value);
    } else {
      params.delete(name);
    }
    history.replaceState(null, "", location.pathname + "?" + params.toString());
  };
}

async function start() {
  const response = await fetch("/auth/session", {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (response.status !== 200) {
    showSignedOut("Not signed in.");
    return;
  }
  const session = await response.json();
  showSignedIn(session);

  const params = new URLSearchParams(location.search);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const wsClient = graphqlWs.createClient({
    url: scheme + location.host + "/graphql",
    connectionParams: { csrfToken: session.csrfToken },
    lazy: true,
  });
  const fetcher = GraphiQL.createFetcher({
    url: "/graphql",
    headers: { "X-CPL-CSRF": session.csrfToken },
    wsClient,
  });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: DEFAULT_QUERY,
      query: params.get("query") ?? undefined,
      variables: params.get("variables") ?? undefined,
      onEditQuery: keepInAddress(params, "query"),
      onEditVariables: keepInAddress(params, "variables"),
      shouldPersistHeaders: false,
      storage: window.sessionStorage,
      defaultEditorToolsVisibility: true,
    }),
  );
}

start().catch((error) => showSignedOut("Could not reach the server: " + error.message + "."));

// A real OpenID Connect provider (the certified `oidc-provider` package) for Atrium's single
// sign-on tests, on loopback. Configuration comes from the environment:
//   PORT          the port to listen on (issuer http://127.0.0.1:PORT)
//   OIDC_CLIENTS  JSON list of {client_id, client_secret, redirect_uris}
//   OIDC_GROUPS   JSON object: login -> list of group names (the `groups` claim)
// Its development login page signs in whoever types a login; the claims are made from it.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const groups = JSON.parse(process.env.OIDC_GROUPS || '{}');

const provider = new Provider(issuer, {
  clients: clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  conformIdTokenClaims: false, // the ID token carries the claims, as most providers do
  cookies: { keys: ['atrium-test-only'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id,
          email: `${id}@example.invalid`,
          groups: groups[id] || [],
        };
      },
    };
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

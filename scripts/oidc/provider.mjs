// A real OpenID Connect provider (node oidc-provider) for Stagekeeper's single sign-on tests.
// Started by scripts/oidc_harness.py: one static confidential client, three users whose groups
// go into the ID token, and the library's own login and consent pages (devInteractions).
// Usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI[,REDIRECT_URI...]
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirects] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

// The test users; any password is accepted by devInteractions, the login name picks the user.
const USERS = {
  alice: { name: 'Alice Payroll', groups: ['stagekeeper-users', 'payroll ops'] },
  bob: { name: 'Bob Contractor', groups: ['contractors'] },
  carol: { name: 'Carol Admin', groups: ['stagekeeper-users', 'stagekeeper-admins'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirects.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  // The claims the scopes ask for go into the ID token itself (Stagekeeper reads no userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['stagekeeper-test-provider-cookie-key'] },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: user.name, preferred_username: id, groups: user.groups };
      },
    };
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

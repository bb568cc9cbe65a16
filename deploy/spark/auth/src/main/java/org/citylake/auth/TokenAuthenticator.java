package org.citylake.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

import javax.security.sasl.AuthenticationException;

import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * The token check of `citylake sql-server --protocol hive2` (citylake/drivers/cli/sql_server.py).
 *
 * Spark's Thrift server (HiveServer2) checks user name and password only through a provider class:
 * LDAP, PAM, Kerberos or, with hive.server2.authentication=CUSTOM, the class named by
 * hive.server2.custom.authentication.class. The lake has one shared secret for its SQL clients,
 * CITYLAKE_SQL_TOKEN (the same token Spark Connect clients send), so this class accepts a login whose
 * password equals that token, whatever the user name: who may read what is decided by the storage
 * identity the server runs as, not by the name a client gives.
 *
 * The token is read from the server process's environment, never from a setting: Spark and Hive
 * settings can be shown (logs, the Spark UI), the environment is not. The comparison takes the same
 * time wherever the first difference is (MessageDigest.isEqual), so timing does not leak the token.
 * An empty or missing token refuses every login.
 */
public final class TokenAuthenticator implements PasswdAuthenticationProvider {
    static final String TOKEN_ENV = "CITYLAKE_SQL_TOKEN";

    private final byte[] token;

    public TokenAuthenticator() {
        this(System.getenv(TOKEN_ENV));
    }

    TokenAuthenticator(String token) {
        this.token = token == null ? new byte[0] : token.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void Authenticate(String user, String password) throws AuthenticationException {
        byte[] given = password == null ? new byte[0] : password.getBytes(StandardCharsets.UTF_8);
        if (token.length == 0 || !MessageDigest.isEqual(token, given)) {
            throw new AuthenticationException("citylake: wrong token (the password must be " + TOKEN_ENV + ")");
        }
    }
}

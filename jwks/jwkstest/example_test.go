package jwkstest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/authresolver/authresolver/jwks"
	"github.com/authresolver/authresolver/jwks/jwkstest"
)

func Example() {
	key := jwkstest.NewKey("ES256", "k1")
	srv := jwkstest.NewServer(key)
	defer srv.Close()

	v, err := jwks.New(jwks.Options{Issuer: "https://issuer.test", URL: srv.URL(), Algorithms: []string{"ES256"}})
	if err != nil {
		panic(err)
	}
	if err := v.Start(context.Background()); err != nil {
		panic(err)
	}
	defer v.Close()

	claims := jwkstest.Claims("https://issuer.test", "user-1", time.Hour)
	claims["roles"] = []string{"admin"}
	id, reason, err := v.Verify(context.Background(), key.Mint(claims))
	fmt.Println(id.UserID, id.Roles, reason == "", err)

	// A hostile header: the key is taken from the configured JWKS only.
	attacker := jwkstest.NewKey("ES256", "k1")
	_, reason, _ = v.Verify(context.Background(), attacker.Sign(map[string]any{"jwk": attacker.JWK()}, claims))
	fmt.Println(reason)
	// Output:
	// user-1 [admin] true <nil>
	// invalid_signature
}

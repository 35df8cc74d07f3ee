package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/rotorhq/rotor/client"
)

// A service that lets any signed-in user list posts, users whose roles
// grant posts:write create them, and moderators delete them.
func Example() {
	v, err := client.New(context.Background(), client.Config{
		BaseURL:  "http://127.0.0.1:8000", // the cluster's load balancer
		Issuer:   "http://127.0.0.1:8000", // the nodes' --issuer
		Audience: "rotor",                 // the nodes' --audience
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /posts", v.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := client.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "posts for user %s\n", claims.Subject)
	})))
	mux.Handle("POST /posts", v.Middleware(client.AllPermissions("posts:write"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})))
	mux.Handle("DELETE /posts/{id}", v.Middleware(client.AnyRole("moderator", "admin"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", mux))
}

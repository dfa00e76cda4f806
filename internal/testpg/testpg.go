// Package testpg gives tests a PostgreSQL database of their own on the
// server named by TEST_DATABASE_URL, so the PostgreSQL variants of the
// store, engine and replica tests share one way of getting one.
package testpg

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Database creates a fresh database on TEST_DATABASE_URL's server, drops it
// when the test ends, and returns its URL. Without TEST_DATABASE_URL the
// test is skipped with a message saying how to run it, except under CI,
// where the PostgreSQL tests are required and the test fails.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("TEST_DATABASE_URL is required in CI")
		}
		t.Skip("needs PostgreSQL: set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

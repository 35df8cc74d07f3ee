// Package account serves the "your devices" page at /account/: plain HTML,
// CSS and JavaScript embedded in the binary, with no build step. The page
// logs in with cookie delivery, so the refresh token stays in an HttpOnly
// cookie that its JavaScript cannot read, keeps the access token in memory
// only, lists the user's sessions and ends one, all others, or all.
package account

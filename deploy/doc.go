// Package deploy holds deployment recipes; its test checks them.
package deploy

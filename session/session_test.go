package session

import "encoding/base64"

var base64RawURL = base64.RawURLEncoding

package qrimage

import (
	"fmt"
	"image"
	"image/png"
	"io"
)

func decodePNG(r io.Reader) (image.Image, error) {
	img, err := png.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("qrimage: png: %w", err)
	}
	return img, nil
}

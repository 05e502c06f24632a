/*
 * page: embeds page.html, the browser client, into the binary, so chat-gw
 * serves it with no files to install. .incbin reads the file at build time
 * (paths are relative to the top of the tree, where make runs).
 */
#include "page.h"

__asm__(".section .rodata\n"
	".global page_html\n"
	".type page_html, @object\n"
	"page_html:\n"
	".incbin \"cmd/chat-gw/page.html\"\n"
	".byte 0\n"
	".size page_html, . - page_html\n"
	".previous\n");

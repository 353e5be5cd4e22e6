# make install / uninstall / man / deb. The installed klab is its own build (build/install/klab): it has its
# prefix compiled in instead of this clone's path, and finds its files under <prefix>/share/klab (paths.c).
PREFIX     ?= /usr/local
DESTDIR    ?=
# The library folder below PREFIX (the Debian package: lib/<multiarch triplet>).
LIBDIR_REL ?= lib
bindir     := $(PREFIX)/bin
libdir     := $(PREFIX)/$(LIBDIR_REL)
includedir := $(PREFIX)/include
datadir    := $(PREFIX)/share/klab
mandir     := $(PREFIX)/share/man
docdir     := $(PREFIX)/share/doc/klab
bashcompdir := $(PREFIX)/share/bash-completion/completions

INSTALL_CFLAGS := $(KLAB_BASE_CFLAGS) -DKLAB_PREFIX='"$(PREFIX)"' -DKLAB_LIBDIR='"$(LIBDIR_REL)"' \
                  -DKLAB_SOVERSION='"$(SOVERSION)"'

# Rebuilt whenever PREFIX or LIBDIR_REL differ from the last install build's.
$(BUILD)/install/config: FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' "$(PREFIX) $(LIBDIR_REL) $(KLAB_VERSION) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)" | cmp -s - $@ || \
	  printf '%s\n' "$(PREFIX) $(LIBDIR_REL) $(KLAB_VERSION) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)" > $@
$(BUILD)/install/klab: $(KLAB_SRC) $(HEADERS) $(BUILD)/install/config | deps
	$(CC) $(INSTALL_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(KLAB_INC) $(LDFLAGS) -o $@ $(KLAB_SRC) $(LDLIBS)
# libklab as installed: built with the same flags (the package's are Debian's hardening ones).
INSTALL_LIB_OBJ := $(patsubst gdb/lib/%.c,$(BUILD)/install/libklab/%.o,$(LIBKLAB_SRC))
$(BUILD)/install/libklab/%.o: gdb/lib/%.c $(LIBKLAB_HDR) $(BUILD)/install/config | deps
	@mkdir -p $(dir $@)
	$(CC) $(KLAB_BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<
$(BUILD)/install/libklab.so: $(INSTALL_LIB_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libklab.so.$(SOVERSION) -o $@ $^ $(LIBKLAB_LIBS)
$(BUILD)/install/libklab.a: $(INSTALL_LIB_OBJ)
	$(AR) rcs $@ $^

# Man pages, written by klab from its command and option tables (the ones --help prints).
$(BUILD)/man/stamp: $(KLAB)
	@rm -rf $(BUILD)/man && mkdir -p $(BUILD)/man
	$(KLAB) __man > $(BUILD)/man/klab.1
	@for c in $$($(KLAB) __man --list); do $(KLAB) __man $$c > $(BUILD)/man/klab-$$c.1 || exit 1; done
	@touch $@
man: $(BUILD)/man/stamp

$(BUILD)/klab.pc: mk/klab.pc.in $(BUILD)/install/config
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(libdir)|; s|@INCLUDEDIR@|$(includedir)|; s|@VERSION@|$(KLAB_VERSION)|' \
	  $< > $@

# What klab runs from its data folder, in the source tree's layout (machine/paths.h).
DATA_SCRIPTS := kernels/fetch-debian.sh kernels/build.sh kernels/gdb-index.sh kernels/module.sh \
                rootfs/fetch-busybox.sh scripts/deps.sh scripts/crash-build.sh
DOCS := README.md $(wildcard docs/*.md)

install: $(BUILD)/install/klab $(BUILD)/install/libklab.so $(BUILD)/install/libklab.a $(BUILD)/klab.pc man
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(libdir)/pkgconfig $(DESTDIR)$(includedir) \
	  $(DESTDIR)$(datadir)/gdb/klab $(DESTDIR)$(datadir)/kernels/configs $(DESTDIR)$(datadir)/rootfs \
	  $(DESTDIR)$(datadir)/scripts/crash-patches $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(bashcompdir) $(DESTDIR)$(docdir)
	install -m 0755 $(BUILD)/install/klab $(DESTDIR)$(bindir)/klab
	install -m 0644 $(BUILD)/install/libklab.so $(DESTDIR)$(libdir)/libklab.so.$(KLAB_VERSION)
	ln -sf libklab.so.$(KLAB_VERSION) $(DESTDIR)$(libdir)/libklab.so.$(SOVERSION)
	ln -sf libklab.so.$(SOVERSION) $(DESTDIR)$(libdir)/libklab.so
	install -m 0644 $(BUILD)/install/libklab.a $(DESTDIR)$(libdir)/libklab.a
	install -m 0644 $(BUILD)/klab.pc $(DESTDIR)$(libdir)/pkgconfig/klab.pc
	install -m 0644 gdb/lib/klab.h $(DESTDIR)$(includedir)/klab.h
	install -m 0644 gdb/klab/*.py $(DESTDIR)$(datadir)/gdb/klab/
	for f in $(DATA_SCRIPTS); do install -m 0755 $$f $(DESTDIR)$(datadir)/$$f || exit 1; done
	install -m 0644 kernels/configs/*.config $(DESTDIR)$(datadir)/kernels/configs/
	install -m 0644 kernels/probe-cache.mk $(DESTDIR)$(datadir)/kernels/
	install -m 0644 scripts/crash-patches/*.patch $(DESTDIR)$(datadir)/scripts/crash-patches/
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(mandir)/man1/
	install -m 0644 scripts/klab.bash $(DESTDIR)$(bashcompdir)/klab
	install -m 0644 $(DOCS) $(DESTDIR)$(docdir)/

uninstall:
	rm -f $(DESTDIR)$(bindir)/klab $(DESTDIR)$(libdir)/libklab.so.$(KLAB_VERSION) \
	  $(DESTDIR)$(libdir)/libklab.so.$(SOVERSION) $(DESTDIR)$(libdir)/libklab.so $(DESTDIR)$(libdir)/libklab.a \
	  $(DESTDIR)$(libdir)/pkgconfig/klab.pc $(DESTDIR)$(includedir)/klab.h $(DESTDIR)$(bashcompdir)/klab
	rm -f $(DESTDIR)$(mandir)/man1/klab.1 $(DESTDIR)$(mandir)/man1/klab-*.1   # klab-COMMAND(1): klab's by name
	rm -rf $(DESTDIR)$(datadir) $(DESTDIR)$(docdir)

# The Debian package: `make install` staged with Debian's paths, then packaging/mkdeb.sh (dpkg-deb).
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_MULTIARCH := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
# Debian's build flags with every hardening feature (dpkg-buildflags(1)), as debhelper would pass them.
deb: export DEB_BUILD_MAINT_OPTIONS = hardening=+all
deb: DEB_CFLAGS = $(shell DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)
deb: DEB_CPPFLAGS = $(shell DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)
deb: DEB_LDFLAGS = $(shell DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)
deb:
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb
	$(MAKE) --no-print-directory install PREFIX=/usr LIBDIR_REL=lib/$(DEB_MULTIARCH) DESTDIR=$(CURDIR)/$(BUILD)/deb/root \
	  CFLAGS="$(DEB_CFLAGS)" CPPFLAGS="$(DEB_CPPFLAGS)" LDFLAGS="$(DEB_LDFLAGS)"
	bash packaging/mkdeb.sh $(BUILD)/deb/root $(KLAB_VERSION) $(DEB_ARCH) $(BUILD)/deb

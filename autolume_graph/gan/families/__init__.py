"""The bundled GAN families: each module registers one `family.Family`; to add a family, add a module here."""

/* placeholder-scaffold */
